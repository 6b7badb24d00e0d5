// Package vouch marks the fields of an event that the identity of the
// collector which published it cannot vouch for (crowsnest.spoofed_fields),
// or rejects such events.
//
// A collector's identity is the collector token of its raw subject
// (crowsnest.raw.<source>.<collector>.…), which NATS permissions bind to its
// credential, plus what the processor's configuration says about where that
// collector runs: a node, a namespace. Nothing the collector writes itself —
// not its Crowsnest-Node header, not a record's host.name — is identity: a
// compromised node-scoped collector (docker, procwatch, auditd, Tetragon
// through json_lines) can claim any host or namespace, and a rule or an
// analyst must be able to tell such a claim from a vouched one.
//
// Bindings map collector tokens to places, either one by one (collector
// "webhook-1", node "cp-1") or by a naming convention with placeholders
// ("node_{node}": the token "node_worker-3" runs on node worker-3;
// "sidecar_{namespace}_*": in that namespace). A placeholder takes the
// shortest run of the token that lets the rest match; '_' is the separator
// to use, as Kubernetes names never hold one. The convention is the
// deployment's: set
// collector_id from the downward API (spec.nodeName, metadata.namespace) and
// give each node or namespace its own NATS credential bound to that token.
// Names compare as subject tokens (topology.SanitizeToken: lowercase, '.'
// as '_'), since that is all a token can hold.
//
// A node binding vouches for host.name, host.hostname and
// crowsnest.collector.node; a namespace binding for orchestrator.namespace.
// What a binding leaves out is not checked (a cluster-scoped collector, the
// audit webhook, may speak of any namespace). A collector no binding
// matches is trusted, or, with unlisted: mark, vouches for none of those
// fields.
//
// It must not change the fields it checks (enrichment, from the API server,
// fills what is trustworthy) nor read anything but the event and the
// collector token.
package vouch
