// Package elasticsearch is the Elasticsearch sink: it writes every event and
// alert, the ECS document exactly as published, to the data streams
// logs-crowsnest.events-<namespace> and logs-crowsnest.alerts-<namespace>
// with its own loop over the _bulk API (go-elasticsearch/v8 as the client,
// not esutil.BulkIndexer, which neither reports outcomes per record to a
// caller that must ack each one nor retries anything).
//
// # Templates and lifecycle
//
// Before the first write (in the background at once, then before each write
// until it succeeded) the sink puts the component template (mappings) and the
// index template (data stream) generated from schemas/fields.yml, embedded in
// the schemas module. Both are PUT every start, so a new crowsnest brings its
// mappings; a sink that finds a newer schema version installed leaves the
// templates alone. An existing data stream gets the new fields in place (PUT
// <stream>/_mapping). Mappings are dynamic: false, so unknown keys stay in
// _source without ever becoming fields, and free-form maps are flattened: a
// hostile document cannot grow the mapping.
//
// Data ages out by the data stream lifecycle (lifecycle.retention) where the
// server has it (detected; a log line says when it is skipped), or by the ILM
// policy named in lifecycle.ilm_policy, which the sink installs from the
// policy shipped in ilm-policy.json when none of that name exists.
//
// # Writing
//
// A batch becomes one or more _bulk requests of at most max_request_bytes,
// sent one after another, each document a create action with _id = the
// message id (= event.id) and the body passed through as it is (a body on
// several lines is compacted onto one; nothing is re-encoded). Per document:
//
//	201            written
//	409            already there (an earlier delivery wrote it): written
//	429, 5xx       retryable, for that document only
//	401 403 404 408 retryable: a misconfigured sink or cluster, not a bad document
//	other 4xx      permanent (mapping and parsing errors): dead-lettered
//
// A record that cannot be sent at all (not one JSON object, no id, an id
// over 512 bytes) is permanent without a request. A request that fails whole
// (connection refused or reset, a timeout, a non-200 reply) makes its
// documents retryable; when it was the batch's only request, WriteBatch
// returns a plain error. The client's own retries are off (see newClient):
// the Runner retries, with backoff and jitter, only what failed.
//
// Create with an _id is idempotent within one backing index, which makes
// redelivery harmless: the count of documents equals the count of unique
// event ids. The exception is a redelivery that straddles a rollover (the
// first write went to the old backing index): the document is then in both.
//
// This package must not ack messages, talk to NATS, or read documents back
// except in its tests.
package elasticsearch
