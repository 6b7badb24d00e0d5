package normalize

import "time"

// A Record is one raw message as the collector published it, with the
// identity the bus carried beside it.
type Record struct {
	// Source names the mapper: k8s_audit, falco, tetragon, …
	Source string
	// Data is the record exactly as the source produced it.
	Data []byte
	// ID is the Nats-Msg-Id the collector published with, possibly empty.
	ID string
	// Subject is the NATS subject the record arrived on.
	Subject string
	// Collector and Node identify the publishing collector (headers).
	Collector string
	Node      string
	// Observed is when the collector read the record; zero if unknown.
	Observed time.Time
	// Owned says Data is never written again once handed in (a NATS
	// message's payload: the client allocates one per message), so the
	// Normalizer reads it in place instead of copying it. Leave it false for
	// a buffer the caller reuses (a line reader's): events and the enricher
	// keep substrings of the record.
	Owned bool

	// text is Data as a string while a mapper runs: the Normalizer converts
	// once, so every field a mapper takes from the record is a substring of
	// one copy (or of Data itself when Owned) and costs no allocation. For a record that holds several
	// events (see Splitter) it is the part being mapped.
	text string
}

// Text returns the record a mapper must read: Data as a string, or, inside
// [Normalizer.NormalizeEach], the part of a batch being mapped. Strings taken
// from it (gjson results, substrings) may be kept in the event: it is a copy,
// or Data itself only when the caller promised never to write it (Owned).
func (r *Record) Text() string {
	if r.text != "" {
		return r.text
	}
	return string(r.Data)
}
