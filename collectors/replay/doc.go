// Package replay is the zero-config source of `crowsnest run`: it replays a
// sample of realistic events — the bundled one (see samples/README.md) or
// files the user names — through the publisher, at a steady rate, in a loop.
//
// Every loop is new data: each record gets fresh identities (a Kubernetes
// auditID, a Falco uuid, Tetragon exec ids) and timestamps shifted to now,
// rewritten with gjson/sjson so the rest of the record stays byte for byte as
// the source wrote it. Identities are a deterministic function of (the replay
// instance id kept in the data dir, loop, index), and the position is
// checkpointed durably only after JetStream acknowledged the records, so a
// restart resumes where it left off: nothing lost, and what was re-sent after
// a crash has the same message ids and is dropped by JetStream's duplicate
// window.
//
// It must not parse records beyond the fields it rewrites, nor know anything
// downstream of the publisher.
package replay
