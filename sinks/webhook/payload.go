package webhook

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"text/template"

	"github.com/crowsnest-siem/crowsnest/sinks/sink"
	"github.com/tidwall/gjson"
)

// DefaultSlackTemplate renders an alert as one line of Slack mrkdwn (an event,
// when the events stream is forwarded too, names its action instead of a
// rule).
const DefaultSlackTemplate = `{{if .Alert}}:rotating_light: *{{.Get "rule.name"}}* [{{.Get "rule.level"}}]{{else}}*{{.Get "event.action"}}*{{end}} {{.Get "message"}}` +
	`{{with .Get "orchestrator.namespace"}} · namespace {{.}}{{end}}` +
	`{{with .Get "orchestrator.resource.name"}} · {{.}}{{end}}` +
	`{{with .Get "user.name"}} · user {{.}}{{end}}` +
	` · {{.Get "@timestamp"}} · {{.ID}}`

// Record is what a template sees: one record, read through Get.
type Record struct {
	// ID is the record's event.id (escaped in a slack payload).
	ID string
	// Alert is true for a record of the alerts stream.
	Alert bool

	raw    []byte
	escape func(string) string
}

// Get returns the value at a dotted path of the document ("rule.name",
// "@timestamp", "event.category.0"), as text: "" when absent, JSON for an
// object or array. In a slack payload the value is escaped for Slack (&, <,
// >), so event data cannot mention @channel or forge links.
func (r Record) Get(path string) string {
	v := gjson.GetBytes(r.raw, escapePath(path))
	var s string
	switch {
	case !v.Exists():
		return ""
	case v.Type == gjson.String:
		s = v.Str
	default:
		s = v.Raw
	}
	if r.escape != nil {
		s = r.escape(s)
	}
	return s
}

// JSON returns the whole document as published (escaped in a slack
// payload, like Get).
func (r Record) JSON() string {
	if r.escape != nil {
		return r.escape(string(r.raw))
	}
	return string(r.raw)
}

// escapePath escapes the characters gjson gives a meaning to, so a template
// names fields by their plain dotted names.
func escapePath(path string) string {
	var b strings.Builder
	for i := 0; i < len(path); i++ {
		switch c := path[i]; c {
		case '@', '*', '?', '#', '|', '!', '=', '<', '>', '%', '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// slackEscape escapes what Slack's mrkdwn gives a meaning to in text that is
// not ours.
var slackEscape = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace

// funcs are the template functions besides the built-in ones.
var funcs = template.FuncMap{
	// json quotes a value as a JSON string, for building JSON bodies.
	"json": func(s string) (string, error) {
		b, err := json.Marshal(s)
		return string(b), err
	},
}

// sampleAlert is what a template is tried on when the config is validated,
// so a call of a method that does not exist fails at load, not per record.
var sampleAlert = []byte(`{"@timestamp":"2026-11-26T10:15:02Z","message":"Terminal shell in container","event":{"id":"sample","kind":"alert","severity":73},"rule":{"id":"cn-0001","name":"Exec into pod","level":"high"},"orchestrator":{"namespace":"payments","resource":{"name":"api-7f9c"}},"user":{"name":"alice"}}`)

// renderer turns records into request bodies.
type renderer struct {
	payload string
	tmpl    *template.Template // nil for payload json
}

func newRenderer(payload, text string) (*renderer, error) {
	r := &renderer{payload: payload}
	if payload == PayloadJSON {
		return r, nil
	}
	if payload == PayloadSlack && text == "" {
		text = DefaultSlackTemplate
	}
	t, err := template.New("webhook").Funcs(funcs).Option("missingkey=error").Parse(text)
	if err != nil {
		return nil, err
	}
	r.tmpl = t
	if _, err := r.text(sink.Record{Data: sampleAlert, ID: "sample", Kind: sink.KindAlerts}); err != nil {
		return nil, fmt.Errorf("fails on a sample alert: %w", err)
	}
	return r, nil
}

// text executes the template on one record.
func (r *renderer) text(rec sink.Record) (string, error) {
	data := Record{ID: rec.ID, Alert: rec.Kind == sink.KindAlerts, raw: rec.Data}
	if r.payload == PayloadSlack {
		data.escape = slackEscape
		data.ID = slackEscape(data.ID)
	}
	var b strings.Builder
	if err := r.tmpl.Execute(&b, data); err != nil {
		return "", err
	}
	return b.String(), nil
}

// errNotJSON is the permanent failure of a record whose body is not JSON.
var errNotJSON = errors.New("record is not a JSON document")

// one renders the body of one record. Its errors are the record's own:
// retrying cannot change them.
func (r *renderer) one(rec sink.Record) ([]byte, error) {
	if !json.Valid(rec.Data) {
		return nil, errNotJSON
	}
	switch r.payload {
	case PayloadJSON:
		return rec.Data, nil
	case PayloadSlack:
		s, err := r.text(rec)
		if err != nil {
			return nil, fmt.Errorf("render template: %w", err)
		}
		return slackBody(s), nil
	default:
		s, err := r.text(rec)
		if err != nil {
			return nil, fmt.Errorf("render template: %w", err)
		}
		return []byte(s), nil
	}
}

// many renders the body of several records, each already rendered alone
// (parts[i] is one(recs[i])): a JSON array, or one Slack message of a line
// per record.
func (r *renderer) many(parts [][]byte) []byte {
	if r.payload == PayloadSlack {
		lines := make([]string, len(parts))
		for i, p := range parts {
			var m struct{ Text string }
			_ = json.Unmarshal(p, &m) // slackBody made it
			lines[i] = m.Text
		}
		return slackBody(strings.Join(lines, "\n"))
	}
	var b bytes.Buffer
	b.WriteByte('[')
	for i, p := range parts {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(p)
	}
	b.WriteByte(']')
	return b.Bytes()
}

func slackBody(text string) []byte {
	b, _ := json.Marshal(struct {
		Text string `json:"text"`
	}{text}) // a string always marshals
	return b
}
