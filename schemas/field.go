package schemas

import (
	"encoding/json"
	"time"
)

// FieldKind says how a field's value is held, and so which accessor of a
// [FieldGetter] is set.
type FieldKind uint8

// The kinds of field values. Each registry type maps to one: keyword, text
// and ip to FieldString (FieldStrings when an array); long and integer to
// FieldInt; boolean to FieldBool; date to FieldTime; flattened to FieldMap;
// json to FieldJSON.
const (
	FieldString FieldKind = iota + 1
	FieldStrings
	FieldInt
	FieldBool
	FieldTime
	FieldMap
	FieldJSON
)

// String returns the kind's name.
func (k FieldKind) String() string {
	switch k {
	case FieldString:
		return "string"
	case FieldStrings:
		return "strings"
	case FieldInt:
		return "int"
	case FieldBool:
		return "bool"
	case FieldTime:
		return "time"
	case FieldMap:
		return "map"
	case FieldJSON:
		return "json"
	}
	return "unknown"
}

// A FieldGetter reads one registry field of an Event without reflection and
// without allocating: it returns the value the event holds (strings, slices
// and maps are the event's own, not copies). Exactly the accessor named by
// Kind is set. Rule engines resolve a field name once, at compile time, with
// [EventField], and call the accessor per event.
//
// Presence follows the JSON encoding: a value the encoder omits is absent. So
// String returns "" and Strings an empty slice for an absent field; Int and
// Bool report ok=false for a nil nullable field and for a zero non-nullable
// one (which the document omits); Time returns the zero time.
type FieldGetter struct {
	// Name is the registry (ECS dotted) name.
	Name string
	// Type is the registry type (keyword, ip, long, …).
	Type string
	Kind FieldKind

	String  func(e *Event) string
	Strings func(e *Event) []string
	Int     func(e *Event) (v int64, ok bool)
	Bool    func(e *Event) (v bool, ok bool)
	Time    func(e *Event) time.Time
	Map     func(e *Event) map[string]string
	JSON    func(e *Event) json.RawMessage
}
