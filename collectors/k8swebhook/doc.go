// Package k8swebhook is the Kubernetes audit webhook backend: kube-apiserver
// (--audit-webhook-config-file) POSTs audit.k8s.io/v1 EventList batches to
// it, and it publishes every event of a batch as its own raw record with the
// event's natural identity, msgid.K8sAudit(auditID, stage), the id the audit
// log tail gives the same event.
//
// It answers 200 only after JetStream acknowledged every event of the batch
// (or, for an event that is not a valid audit event, its dead-letter
// record), so an answered batch is durable. When JetStream does not take the
// events within request_timeout it answers 503 with Retry-After, and 429 at
// max_in_flight_requests, so the API server sends the batch again; the ids
// make the repeat harmless. When NATS is unreachable and the spool has no
// room (Settings.Ready), it answers 503 at once instead of holding the
// request. With the agent's disk spool on, an event taken by the spool
// counts as stored: the spool replays it with its id once NATS is back. A body that is not an EventList is
// dead-lettered whole and answered 400 (sending it again cannot help).
//
// It serves HTTPS (TLS 1.2+) and authenticates the API server by client
// certificate and/or bearer token (collectors/internal/ingress); plain HTTP
// only on a loopback address with allow_insecure_loopback.
//
// It must not interpret events beyond their identity: that is the
// processor's job.
package k8swebhook
