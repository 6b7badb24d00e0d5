// Package falcohttp receives Falco alerts over HTTP(S): the JSON Falco's
// http_output POSTs (one alert per request), the body falcosidekick's
// webhook output POSTs (its FalcoPayload: uuid, output, priority, rule,
// time, output_fields, source, tags, hostname), and, for other forwarders,
// JSON lines (one alert per line) or a JSON array of alerts.
//
// Each alert is published as its own raw record, bytes as received, with
// the alert's uuid as its message id when it has one (falcosidekick sets
// it) and msgid.FromContent otherwise. Like the audit webhook, a request is
// answered 200 only after JetStream acknowledged every alert of it; 503 or
// 429 with Retry-After otherwise, so the sender retries. A part that is not
// an alert is dead-lettered with the reason, the rest published.
//
// Authentication is optional (Falco's http_output cannot send a token; a
// bearer token or client certificates when the sender can). TLS is required
// except on a loopback address with allow_insecure_loopback — the usual
// Falco-in-the-same-pod setup.
//
// It must not judge alerts: that is the processor's job.
package falcohttp
