package normalize

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/tidwall/gjson"
)

// Limits bound what a mapper copies out of a record into an event. Every
// method sets *truncated when it drops something, which mappers point at
// ev.Crowsnest.Truncated.
type Limits struct {
	MaxEntries   int // per map or list taken from the record
	MaxJSONBytes int // per raw JSON object kept verbatim
	MaxDepth     int // nesting depth of JSON embedded in a string (CheckJSON)
}

// Limits returns the bounds c sets for mappers.
func (c *Config) Limits() Limits {
	return Limits{MaxEntries: c.MaxMapEntries, MaxJSONBytes: int(c.MaxJSONBytes), MaxDepth: c.MaxDepth}
}

// CheckJSON applies the Normalizer's JSON checks (validity, nesting depth)
// to JSON a mapper found embedded in a string of the record — an AKS
// properties.log — before it parses it with gjson.
func (l Limits) CheckJSON(s string) error {
	if reason, at := checkJSON(s, l.MaxDepth); reason != "" {
		return &RejectError{Reason: reason, Detail: fmt.Sprintf("embedded JSON, at byte %d", at)}
	}
	return nil
}

// Append appends s to dst unless dst is full.
func (l Limits) Append(dst []string, s string, truncated *bool) []string {
	if len(dst) >= l.MaxEntries {
		*truncated = true
		return dst
	}
	return append(dst, s)
}

// AppendUnique appends s unless it is empty, already present or dst is full.
// Lists taken from records are short, so the linear search beats a set.
func (l Limits) AppendUnique(dst []string, s string, truncated *bool) []string {
	if s == "" {
		return dst
	}
	for _, x := range dst {
		if x == s {
			return dst
		}
	}
	return l.Append(dst, s, truncated)
}

// Put sets m[k] = v, allocating m on first use, unless m is full.
func (l Limits) Put(m map[string]string, k, v string, truncated *bool) map[string]string {
	if m == nil {
		m = make(map[string]string, min(8, l.MaxEntries))
	}
	if len(m) >= l.MaxEntries {
		if _, ok := m[k]; !ok {
			*truncated = true
			return m
		}
	}
	m[k] = v
	return m
}

// KeepJSON copies raw (a JSON value from a validated record) into dst's
// backing array. A value longer than MaxJSONBytes is dropped whole — a cut
// would no longer be JSON — and the event is marked truncated.
func (l Limits) KeepJSON(dst json.RawMessage, raw string, truncated *bool) json.RawMessage {
	if len(raw) > l.MaxJSONBytes {
		*truncated = true
		return dst[:0]
	}
	return append(dst[:0], raw...)
}

// ParseTime parses an RFC 3339 timestamp with optional fraction, as
// Kubernetes, Falco and Tetragon write them; it returns the zero time for
// anything else.
func ParseTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}
	}
	return t
}

// TypeName names the JSON type of r for rejection messages: object, array,
// string, number, boolean, null, or "nothing" for an empty record.
func TypeName(r gjson.Result) string {
	switch r.Type {
	case gjson.JSON:
		if r.IsArray() {
			return "array"
		}
		return "object"
	case gjson.String:
		return "string"
	case gjson.Number:
		return "number"
	case gjson.True, gjson.False:
		return "boolean"
	case gjson.Null:
		if r.Raw == "" {
			return "nothing"
		}
		return "null"
	}
	return "unknown"
}
