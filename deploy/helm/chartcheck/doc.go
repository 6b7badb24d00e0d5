// Package chartcheck renders the Helm chart in deploy/helm/crowsnest in
// process, as `helm template` would (values merged over values.yaml, checked
// against values.schema.json, templates rendered in strict mode), so its
// tests can decode every manifest strictly into the k8s.io/api types and
// check the hardening invariants (package hardening) without a helm binary.
//
// It is a module of its own so that the product modules never import Helm:
// Helm's library pulls in client-go and friends (about 530 packages for
// this test against about 965 for the helm command; see README.md for the
// measured build times).
package chartcheck
