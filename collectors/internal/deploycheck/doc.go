// Package deploycheck holds the test that keeps deploy/k8s honest: every
// manifest decodes strictly into k8s.io/api types, and every container of
// every workload meets the hardening invariants (non-root, read-only root
// filesystem, no privilege escalation, all capabilities dropped, seccomp
// RuntimeDefault, resource requests and limits). It has no code of its own:
// the invariants live in deploy/helm/chartcheck/hardening, shared with the
// Helm chart's check.
package deploycheck
