// Package ingress is the HTTP(S) front door shared by the push sources (the
// Kubernetes audit webhook, the Falco receiver, JSON lines over HTTP): it
// listens with TLS 1.2+ (or plain HTTP on a loopback address, and only when
// allow_insecure_loopback says so), authenticates the client by certificate
// and/or a bearer token compared in constant time, bounds the requests in
// flight (429 with Retry-After past the bound), the body size (413) and the
// time a request may take, and counts requests by status code.
//
// What a request means, and when it may be answered 2xx, is the source's
// business: the handler it wraps publishes and answers only after JetStream
// acknowledged. StatusFor maps a publish failure to the status that makes a
// well-behaved client retry.
//
// It must not parse bodies or publish anything itself.
package ingress
