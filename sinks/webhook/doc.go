// Package webhook is the webhook sink: it POSTs alerts (and events, if its
// runner is given the events stream) to an HTTP endpoint, for forwarding to
// chat or ticketing. The registry feeds it the alerts stream only by default.
//
// # Requests
//
// In record mode (the default) each record is one POST, up to
// max_concurrent_requests at a time; in batch mode each batch the runner hands
// over is one POST. The body is chosen by payload:
//
//	json      the document as published; in batch mode a JSON array of them
//	slack     {"text": ...} rendered by a text/template (DefaultSlackTemplate
//	          when none is given); in batch mode one message, a line a record
//	template  the template's output as is, with content_type (record mode)
//
// A template sees a [Record]: {{.Get "rule.name"}} reads a field by its
// dotted name ("" when absent), {{.ID}} is event.id, {{.Alert}} tells alerts
// from events, {{.JSON}} is the whole document, and the json function quotes
// a string for a JSON body: {"summary": {{json (.Get "message")}}}. In a slack
// payload Get, JSON and ID escape &, < and >, so event data cannot ping @channel or forge
// links. A template body declared JSON that does not parse fails its record.
//
// Every request carries Content-Type, User-Agent crowsnest-webhook, the
// configured headers, Authorization from a secret, and an Idempotency-Key
// (the event.id in record mode, a hash of the batch's ids in batch mode) so
// a receiver can drop the duplicates at-least-once delivery brings.
// Redirects are not followed: the configured URL is the only destination.
// The URL is a secret (chat webhooks carry their token in the path): logs and
// errors name its scheme and host only.
//
// # Outcomes
//
//	2xx                           written
//	408, 425, 429, 5xx, network   retryable: the runner retries with backoff,
//	error, timeout                then JetStream redelivers
//	any other status (4xx, 3xx)   permanent: the record is dead-lettered
//	a record that is not JSON,    permanent
//	or fails its template
//
// A Retry-After header (seconds or an HTTP date, capped by max_retry_after)
// holds every request back until then: a write whose deadline comes sooner
// fails at once, retryably, without reaching the endpoint. After a retryable
// failure, record mode sends nothing more of that batch: the rest is handed
// back with the same error rather than pushed at an endpoint that is down.
//
// In batch mode a permanent answer says the body was refused, not which
// record: the sink then sends the batch's records one by one, so only those
// refused alone are dead-lettered.
//
// Delivery is at least once: a crash between an endpoint's 2xx and the acks
// sends those records again (with the same Idempotency-Key).
//
// This package must not ack messages or talk to NATS.
package webhook
