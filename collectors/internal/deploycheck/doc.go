// Package deploycheck holds the test that keeps deploy/k8s honest: every
// manifest decodes strictly into k8s.io/api types, and every container of
// every workload meets the hardening invariants (non-root, read-only root
// filesystem, no privilege escalation, all capabilities dropped, seccomp
// RuntimeDefault, resource limits). It has no code of its own.
package deploycheck
