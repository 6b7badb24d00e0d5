package falcohttp

import (
	"bytes"

	"github.com/tidwall/gjson"

	"github.com/crowsnest-siem/crowsnest/bus/msgid"
	"github.com/crowsnest-siem/crowsnest/bus/topology"
)

// part is one alert of a body, or why a piece of the body is not one.
type part struct {
	data   []byte
	id     string
	reject string
}

// split cuts a body into alerts: one JSON object (pretty-printed or not), a
// JSON array of objects, or JSON lines. Pieces that are not alerts come
// back with a reject reason, never dropped.
func split(body []byte, yield func(part) bool) {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return
	}
	if gjson.ValidBytes(trimmed) {
		root := gjson.ParseBytes(trimmed)
		if root.IsArray() {
			root.ForEach(func(_, v gjson.Result) bool {
				return yield(alert(sub(trimmed, v)))
			})
			return
		}
		yield(alert(trimmed))
		return
	}
	for line := range bytes.Lines(trimmed) {
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		if !yield(alert(line)) {
			return
		}
	}
}

// alert checks one piece and derives its id.
func alert(data []byte) part {
	if !gjson.ValidBytes(data) {
		return part{data: data, id: msgid.FromContent(topology.SourceFalco, data), reject: "not valid JSON"}
	}
	root := gjson.ParseBytes(data)
	if !root.IsObject() {
		return part{data: data, id: msgid.FromContent(topology.SourceFalco, data), reject: "not a JSON object"}
	}
	r := gjson.GetManyBytes(data, "uuid", "rule", "output")
	uuid, rule, output := r[0], r[1], r[2]
	if rule.Type != gjson.String && output.Type != gjson.String {
		return part{data: data, id: msgid.FromContent(topology.SourceFalco, data), reject: "not a Falco alert: no rule and no output"}
	}
	if uuid.Type == gjson.String && msgid.Validate(uuid.Str) == nil {
		return part{data: data, id: uuid.Str}
	}
	return part{data: data, id: msgid.FromContent(topology.SourceFalco, data)}
}

// sub returns v's bytes inside body without a copy when gjson knows where
// they are.
func sub(body []byte, v gjson.Result) []byte {
	if v.Index > 0 && v.Index+len(v.Raw) <= len(body) && string(body[v.Index:v.Index+len(v.Raw)]) == v.Raw {
		return body[v.Index : v.Index+len(v.Raw) : v.Index+len(v.Raw)]
	}
	return []byte(v.Raw)
}
