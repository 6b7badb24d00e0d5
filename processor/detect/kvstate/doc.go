// Package kvstate keeps the detection engine's correlation windows in the
// crowsnest-state JetStream key-value bucket (detect.StateStore), so a
// restarted processor, or the one a partition is handed to, resumes the
// windows that were open. It stores bytes under keys and knows nothing of
// what they mean; it must not create or reconfigure the bucket (bus/topology
// declares it).
package kvstate
