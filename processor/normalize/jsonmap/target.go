package jsonmap

import (
	"encoding/json"
	"time"

	"github.com/crowsnest-siem/crowsnest/schemas"
)

// A target is one registry field a mapping writes, reached without
// reflection: exactly the accessor of its kind is set. targets_gen.go
// holds one per field (TestTargetsUpToDate regenerates it from the
// registry and the Event type with -update).
type target struct {
	name string
	typ  string // registry type: keyword, ip, long, …
	kind schemas.FieldKind

	str     func(e *schemas.Event) *string
	strs    func(e *schemas.Event) *[]string
	setInt  func(e *schemas.Event, v int64) bool // false: out of the field's range
	setBool func(e *schemas.Event, v bool)
	time    func(e *schemas.Event) *time.Time
	strMap  func(e *schemas.Event) *map[string]string
	raw     func(e *schemas.Event) *json.RawMessage
}

func fits32(v int64) bool { return v >= -1<<31 && v < 1<<31 }
