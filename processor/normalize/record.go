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

	// text is Data as a string while a mapper runs: the Normalizer converts
	// once, so every field a mapper takes from the record is a substring of
	// one copy and costs no allocation. For a record that holds several
	// events (see Splitter) it is the part being mapped.
	text string
}

// Text returns the record a mapper must read: Data as a string, or, inside
// [Normalizer.NormalizeEach], the part of a batch being mapped. Strings taken
// from it (gjson results, substrings) may be kept in the event: it is a copy,
// never aliasing Data.
func (r *Record) Text() string {
	if r.text != "" {
		return r.text
	}
	return string(r.Data)
}
