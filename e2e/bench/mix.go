package bench

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/crowsnest-siem/crowsnest/bus/msgid"
)

// Kind is the source a generated record is for.
type Kind int

const (
	Audit    Kind = iota // a Kubernetes audit line, tailed from a file
	Tetragon             // a Tetragon JSON export line, tailed from a file
	Falco                // a Falco alert, POSTed to the Falco receiver
)

// template is a sample record cut at the values a generated record
// replaces: parts[0], hole, parts[1], hole, …; holes[i] names what goes
// between parts[i] and parts[i+1].
type template struct {
	parts []string
	holes []string
	stage string // audit: the record's stage (part of the event id)
}

const (
	holeID = "id"
	holeTS = "ts"
	holeN  = "n"  // alert probe: makes the record's group unique
	holeNS = "ns" // Falco's evt.time: Unix nanoseconds
)

var (
	reAuditID  = regexp.MustCompile(`"auditID":"[^"]*"`)
	reAuditTS  = regexp.MustCompile(`"(requestReceivedTimestamp|stageTimestamp)":"[^"]*"`)
	reStage    = regexp.MustCompile(`"stage":"([^"]*)"`)
	reExecID   = regexp.MustCompile(`"exec_id":"[^"]*"`)
	reTime     = regexp.MustCompile(`"time":"[^"]*"`)
	reFalcoID  = regexp.MustCompile(`"uuid":"[^"]*"`)
	reEvtTime  = regexp.MustCompile(`"evt\.time":[0-9]+`)
	reTemplate = regexp.MustCompile("\x00([a-z]+)\x00")
)

// cut turns a line with \x00name\x00 markers into a template.
func cut(line string) template {
	var t template
	last := 0
	for _, m := range reTemplate.FindAllStringSubmatchIndex(line, -1) {
		t.parts = append(t.parts, line[last:m[0]])
		t.holes = append(t.holes, line[m[2]:m[3]])
		last = m[1]
	}
	t.parts = append(t.parts, line[last:])
	return t
}

func auditTemplate(line string) (template, error) {
	st := reStage.FindStringSubmatch(line)
	if st == nil || !reAuditID.MatchString(line) {
		return template{}, fmt.Errorf("audit sample without auditID or stage: %.120s", line)
	}
	line = reAuditID.ReplaceAllLiteralString(line, "\"auditID\":\"\x00id\x00\"")
	line = reAuditTS.ReplaceAllString(line, "\"$1\":\"\x00ts\x00\"")
	t := cut(line)
	t.stage = st[1]
	return t, nil
}

// tetragonTemplate replaces the first exec_id (the event's own process; the
// parent's follows it) and the export's time.
func tetragonTemplate(line string) (template, error) {
	loc := reExecID.FindStringIndex(line)
	if loc == nil || !reTime.MatchString(line) {
		return template{}, fmt.Errorf("tetragon sample without exec_id or time: %.120s", line)
	}
	line = line[:loc[0]] + "\"exec_id\":\"\x00id\x00\"" + line[loc[1]:]
	line = reTime.ReplaceAllLiteralString(line, "\"time\":\"\x00ts\x00\"")
	return cut(line), nil
}

func falcoTemplate(line string) (template, error) {
	if !reFalcoID.MatchString(line) || !reTime.MatchString(line) {
		return template{}, fmt.Errorf("falco sample without uuid or time: %.120s", line)
	}
	line = reFalcoID.ReplaceAllLiteralString(line, "\"uuid\":\"\x00id\x00\"")
	line = reTime.ReplaceAllLiteralString(line, "\"time\":\"\x00ts\x00\"")
	// The event's time is evt.time when present: a sample's would put it
	// months back, past the stores' retention (ClickHouse's TTL drops it).
	line = reEvtTime.ReplaceAllLiteralString(line, "\"evt.time\":\x00ns\x00")
	return cut(line), nil
}

// alertProbe is an audit record the built-in pack alerts on (a service
// account listing secrets cluster-wide), each from its own account so that
// suppression holds none back: how collector-to-alert latency is measured.
var alertProbe = cut(`{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"` + "\x00id\x00" + `","stage":"ResponseComplete","requestURI":"/api/v1/secrets","verb":"list","user":{"username":"system:serviceaccount:bench-` + "\x00n\x00" + `:reader","groups":["system:serviceaccounts","system:authenticated"]},"sourceIPs":["10.1.2.3"],"userAgent":"bench/1.0","objectRef":{"resource":"secrets","apiVersion":"v1"},"responseStatus":{"metadata":{},"code":200},"requestReceivedTimestamp":"` + "\x00ts\x00" + `","stageTimestamp":"` + "\x00ts\x00" + `"}`)

// Mix generates records of the three kinds in fixed proportions from the
// sample templates, each with a fresh id and the current time.
type Mix struct {
	prefix   string
	audit    [][]template // template sets, alternated: the bundled sample, the corpus
	tetragon []template
	falco    []template
	n        int
	// Out of every 20 records: 16 audit (one in AlertEvery of them an alert
	// probe), 3 Tetragon, 1 Falco.
	AlertEvery int
}

// Record is one generated record.
type Record struct {
	Kind  Kind
	Line  []byte
	Key   string // how a stored event is matched to it (StoredKey)
	ID    string // its event.id when known in advance (audit, Falco); "" for Tetragon (a content hash)
	Alert bool   // an alert probe
}

// LoadMix reads the templates: the bundled replay samples under samples
// and, when corpus names a readable file, up to corpusMax of its audit lines.
func LoadMix(prefix, samples, corpus string, corpusMax int) (*Mix, error) {
	m := &Mix{prefix: prefix, AlertEvery: 50}
	sample, err := readTemplates(samples+"/k8s_audit.jsonl", auditTemplate, 0)
	if err != nil {
		return nil, err
	}
	m.audit = append(m.audit, sample)
	if corpus != "" {
		c, err := readTemplates(corpus, auditTemplate, corpusMax)
		if err != nil {
			return nil, err
		}
		m.audit = append(m.audit, c)
	}
	if m.tetragon, err = readTemplates(samples+"/tetragon.jsonl", tetragonTemplate, 0); err != nil {
		return nil, err
	}
	if m.falco, err = readTemplates(samples+"/falco.jsonl", falcoTemplate, 0); err != nil {
		return nil, err
	}
	return m, nil
}

func readTemplates(path string, parse func(string) (template, error), limit int) ([]template, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("templates: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 1<<20), 16<<20)
	var out []template
	for sc.Scan() && (limit == 0 || len(out) < limit) {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		t, err := parse(line)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		out = append(out, t)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("templates %s: %w", path, err)
	}
	if len(out) == 0 {
		return nil, errors.New("templates: " + path + " holds no record")
	}
	return out, nil
}

// Next generates the next record at now.
func (m *Mix) Next(now time.Time) (Record, error) {
	i := m.n
	m.n++
	ts := now.UTC().Format("2006-01-02T15:04:05.000000Z")
	ns := now.UnixNano()
	switch slot := i % 20; {
	case slot < 16:
		a := i/20*16 + slot // audit records so far
		id := fmt.Sprintf("%s-%08d", m.prefix, i)
		var t template
		probe := m.AlertEvery > 0 && a%m.AlertEvery == m.AlertEvery-1
		if probe {
			t = alertProbe
			t.stage = "ResponseComplete"
		} else {
			set := m.audit[a%len(m.audit)]
			t = set[(a/len(m.audit))%len(set)]
		}
		eid, err := msgid.K8sAudit(id, t.stage)
		if err != nil {
			return Record{}, err
		}
		return Record{Kind: Audit, Line: t.render(id, ts, ns, i), Key: eid, ID: eid, Alert: probe}, nil
	case slot < 19:
		id := fmt.Sprintf("%s-%08d", m.prefix, i)
		t := m.tetragon[i%len(m.tetragon)]
		return Record{Kind: Tetragon, Line: t.render(id, ts, ns, i), Key: TetragonKey(id)}, nil
	default:
		// A UUID-shaped id, fresh per run (the prefix's hash) and per record.
		id := fmt.Sprintf("%08x-%04x-4%03x-8%03x-%012x", prefixHash(m.prefix), (i>>48)&0xffff, (i>>36)&0xfff, (i>>24)&0xfff, i&0xffffffffffff)
		t := m.falco[i%len(m.falco)]
		return Record{Kind: Falco, Line: t.render(id, ts, ns, i), Key: id, ID: id}, nil
	}
}

func prefixHash(s string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h = (h ^ uint32(s[i])) * 16777619
	}
	return h
}

func (t template) render(id, ts string, ns int64, n int) []byte {
	b := make([]byte, 0, 2048)
	for i, p := range t.parts {
		b = append(b, p...)
		if i < len(t.holes) {
			switch t.holes[i] {
			case holeID:
				b = append(b, id...)
			case holeTS:
				b = append(b, ts...)
			case holeN:
				b = fmt.Appendf(b, "%d", n)
			case holeNS:
				b = fmt.Appendf(b, "%d", ns)
			}
		}
	}
	return b
}

// TetragonKey is the key of a Tetragon record whose process exec_id is id:
// its event.id is a hash of the content, so a stored Tetragon event is
// matched by its process.entity_id (the exec_id) instead.
func TetragonKey(execID string) string { return "tetragon:" + execID }
