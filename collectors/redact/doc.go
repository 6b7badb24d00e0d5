// Package redact removes secrets from raw records before they are published
// (a publish.Transformer): what reaches JetStream, the stores and the
// dead-letter stream never holds them.
//
// Built in, for Kubernetes audit events (request and response objects):
// the values of a Secret's or ConfigMap's data, stringData and binaryData
// (keys are kept: which key was touched is evidence) — by kind, by
// objectRef.resource for patches without a kind, inside List items, and in
// JSON-patch operations on those paths — the kubectl last-applied-
// configuration annotation that copies them, TokenReview spec.token and
// TokenRequest status.token. For every source: bearer tokens and Basic
// credentials after "Authorization" anywhere in the record (a curl command
// line in a Falco alert, a header in a JSON export). On top, configurable
// paths per source (gjson/sjson syntax; '#' stands for every array
// element).
//
// Redaction replaces a value by the replacement string; it never drops a
// record. It must not change anything else about the record: the bytes are
// the source's, apart from what it redacts.
package redact
