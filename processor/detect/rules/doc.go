// Package rules is crowsnest's built-in rule pack: Sigma rules written for
// container security (hardening, trusted images, runtime, RBAC), embedded in
// the binary. Each rule has positive and negative raw records under
// testdata/<rule>/, run through the normalizer and the detection engine by
// the package's tests (and usable with `crowsnest detect`).
//
// It holds data only: loading and compiling belong to processor/detect.
package rules
