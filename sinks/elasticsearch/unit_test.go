package elasticsearch

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/crowsnest-siem/crowsnest/daemon/config"
	"github.com/crowsnest-siem/crowsnest/sinks/sink"
)

// The tests that need no server.

func TestConfigValidate(t *testing.T) {
	if err := NewDefaultConfig().Validate(); err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
	cases := []struct {
		name   string
		change func(*Config)
		path   string // the key the error must name
	}{
		{"no address", func(c *Config) { c.Addresses = nil }, "addresses"},
		{"bad scheme", func(c *Config) { c.Addresses = []string{"ftp://x:9200"} }, "addresses[0]"},
		{"no host", func(c *Config) { c.Addresses = []string{"http://"} }, "addresses[0]"},
		{"credentials in URL", func(c *Config) { c.Addresses = []string{"https://u:p@x:9200"} }, "addresses[0]"},
		{"password without user", func(c *Config) { c.Password = "pw" }, "username"},
		{"password and file", func(c *Config) { c.Username, c.Password, c.PasswordFile = "u", "pw", "/f" }, "password_file"},
		{"key and basic auth", func(c *Config) { c.Username, c.APIKey = "u", "k" }, "api_key"},
		{"key and file", func(c *Config) { c.APIKey, c.APIKeyFile = "k", "/f" }, "api_key_file"},
		{"bad fingerprint", func(c *Config) { c.TLS.CAFingerprint = "abc" }, "tls.ca_fingerprint"},
		{"namespace with dash", func(c *Config) { c.Namespace = "prod-eu" }, "namespace"},
		{"namespace upper case", func(c *Config) { c.Namespace = "Prod" }, "namespace"},
		{"empty namespace", func(c *Config) { c.Namespace = "" }, "namespace"},
		{"short request timeout", func(c *Config) { c.RequestTimeout = time.Millisecond }, "request_timeout"},
		{"short dial timeout", func(c *Config) { c.DialTimeout = 0 }, "dial_timeout"},
		{"tiny requests", func(c *Config) { c.MaxRequestBytes = 1000 }, "max_request_bytes"},
		{"huge requests", func(c *Config) { c.MaxRequestBytes = 1 << 30 }, "max_request_bytes"},
		{"compression", func(c *Config) { c.Compression = "zstd" }, "compression"},
		{"retention", func(c *Config) { c.Lifecycle.Retention = "3 months" }, "lifecycle.retention"},
		{"policy", func(c *Config) { c.Lifecycle.ILMPolicy = "Bad Name" }, "lifecycle.ilm_policy"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := NewDefaultConfig()
			tc.change(&c)
			err := c.Validate()
			var fe *sink.FieldError
			if !errors.As(err, &fe) || fe.Path != tc.path {
				t.Fatalf("Validate() = %v, want an error at %s", err, tc.path)
			}
		})
	}
	good := NewDefaultConfig()
	good.Username, good.Password = "crowsnest", "pw"
	good.TLS.CAFingerprint = strings.Repeat("ab:", 31) + "ab"
	good.Namespace = "prod.eu_1"
	good.Lifecycle = LifecycleConfig{Retention: "30d", ILMPolicy: "crowsnest-90d"}
	if err := good.Validate(); err != nil {
		t.Errorf("valid config refused: %v", err)
	}
}

// The block decodes strictly, as the config loader does for every sink: a
// typo is an error naming the key.
func TestConfigStrictDecode(t *testing.T) {
	c := NewDefaultConfig()
	err := config.Decode([]byte("addresses: [http://es:9200]\nnamespace: prod\nlifecycle:\n  retension: 30d\n"), "crowsnest.yaml", &c,
		config.WithEnviron(nil))
	if err == nil || !strings.Contains(err.Error(), "retension") {
		t.Fatalf("typo accepted: %v", err)
	}
	c = NewDefaultConfig()
	yaml := "addresses: [https://es:9200]\nusername: crowsnest\npassword: s3cret\nnamespace: prod\ncompression: gzip\n" +
		"max_request_bytes: 5MiB\ntls: {ca_fingerprint: " + strings.Repeat("0", 64) + "}\nlifecycle: {retention: 7d}\n"
	if err := config.Decode([]byte(yaml), "crowsnest.yaml", &c, config.WithEnviron(nil)); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.MaxRequestBytes != 5<<20 || c.Lifecycle.Retention != "7d" || c.Password.Value() != "s3cret" {
		t.Errorf("decoded %+v", c)
	}
	if s := fmt.Sprintf("%v %+v", c, c); strings.Contains(s, "s3cret") {
		t.Error("the password is printed")
	}
}

// The shipped ILM policy is valid ILM: known phases in order, actions
// allowed in their phase, time values Elasticsearch parses, a rollover
// condition, and a delete phase last.
func TestILMPolicy(t *testing.T) {
	timeValue := regexp.MustCompile(`^[0-9]+(d|h|m|s|ms|micros|nanos)$`)
	allowed := map[string][]string{
		"hot":    {"rollover", "set_priority", "forcemerge", "readonly", "shrink", "unfollow", "downsample", "searchable_snapshot"},
		"warm":   {"set_priority", "forcemerge", "readonly", "shrink", "allocate", "migrate", "unfollow", "downsample"},
		"cold":   {"set_priority", "readonly", "allocate", "migrate", "unfollow", "downsample", "searchable_snapshot"},
		"delete": {"wait_for_snapshot", "delete"},
	}
	order := []string{"hot", "warm", "cold", "frozen", "delete"}
	seconds := func(v string) float64 {
		m := timeValue.FindStringSubmatch(v)
		n, _ := strconv.ParseFloat(strings.TrimSuffix(v, m[1]), 64)
		return n * map[string]float64{"d": 86400, "h": 3600, "m": 60, "s": 1, "ms": 1e-3, "micros": 1e-6, "nanos": 1e-9}[m[1]]
	}
	for _, retention := range []string{"", "30d"} {
		body, err := ILMPolicy(retention)
		if err != nil {
			t.Fatal(err)
		}
		var p struct {
			Policy struct {
				Meta   map[string]any `json:"_meta"`
				Phases map[string]struct {
					MinAge  string                     `json:"min_age"`
					Actions map[string]json.RawMessage `json:"actions"`
				} `json:"phases"`
			} `json:"policy"`
		}
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&p); err != nil {
			t.Fatalf("policy: %v", err)
		}
		last := -1.0
		for _, name := range order {
			ph, ok := p.Policy.Phases[name]
			if !ok {
				continue
			}
			if !timeValue.MatchString(ph.MinAge) {
				t.Errorf("%s.min_age %q is not a time value", name, ph.MinAge)
				continue
			}
			if d := seconds(ph.MinAge); d < last {
				t.Errorf("%s.min_age %s is earlier than the phase before", name, ph.MinAge)
			} else {
				last = d
			}
			for a := range ph.Actions {
				ok := false
				for _, x := range allowed[name] {
					ok = ok || x == a
				}
				if !ok {
					t.Errorf("action %s is not allowed in the %s phase", a, name)
				}
			}
		}
		for name := range p.Policy.Phases {
			if !strings.Contains(strings.Join(order, " "), name) {
				t.Errorf("unknown phase %s", name)
			}
		}
		var rollover map[string]string
		if err := json.Unmarshal(p.Policy.Phases["hot"].Actions["rollover"], &rollover); err != nil || len(rollover) == 0 {
			t.Errorf("hot phase has no rollover condition: %v", err)
		}
		del, ok := p.Policy.Phases["delete"]
		if !ok || del.Actions["delete"] == nil {
			t.Fatal("no delete phase with a delete action")
		}
		want := "90d"
		if retention != "" {
			want = retention
		}
		if del.MinAge != want {
			t.Errorf("delete after %s, want %s", del.MinAge, want)
		}
	}
}

func TestIndexTemplateBody(t *testing.T) {
	ts, err := loadTemplates()
	if err != nil {
		t.Fatal(err)
	}
	tm := ts[sink.KindEvents]
	if tm.prefix != "logs-crowsnest.events" || tm.componentName != "logs-crowsnest.events@mappings" {
		t.Fatalf("names from the generated template: %q %q", tm.prefix, tm.componentName)
	}
	for _, tc := range []struct {
		lc   lifecycle
		want []string
		not  []string
	}{
		{lifecycle{}, []string{`"managed_by":"crowsnest"`, `"index.mapping.total_fields.limit"`}, []string{"lifecycle"}},
		{lifecycle{retention: "30d"}, []string{`"lifecycle":{"data_retention":"30d"}`}, []string{"index.lifecycle.name"}},
		{lifecycle{ilmPolicy: "crowsnest"}, []string{`"index.lifecycle.name":"crowsnest"`, `"index.mapping.depth.limit"`}, []string{"data_retention"}},
	} {
		body, err := tm.indexTemplateBody(tc.lc)
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range tc.want {
			if !bytes.Contains(body, []byte(w)) {
				t.Errorf("%+v: %s lacks %s", tc.lc, body, w)
			}
		}
		for _, n := range tc.not {
			if bytes.Contains(body, []byte(n)) {
				t.Errorf("%+v: %s has %s", tc.lc, body, n)
			}
		}
	}
	// The generated template is left as generated.
	if body, _ := tm.indexTemplateBody(lifecycle{}); bytes.Contains(body, []byte("index.lifecycle")) {
		t.Error("a lifecycle leaked into the shared template")
	}
}

func TestItemOutcomes(t *testing.T) {
	reply := []byte(`{"errors":true,"items":[
		{"create":{"status":201}},
		{"create":{"status":409,"error":{"type":"version_conflict_engine_exception","reason":"document already exists"}}},
		{"create":{"status":429,"error":{"type":"es_rejected_execution_exception","reason":"queue full"}}},
		{"create":{"status":400,"error":{"type":"document_parsing_exception","reason":"failed to parse field [@timestamp]","caused_by":{"type":"illegal_argument_exception","reason":"bad date"}}}},
		{"create":{"status":503,"error":{"type":"unavailable_shards_exception","reason":"primary shard is not active"}}},
		{"create":{"status":403,"error":{"type":"security_exception","reason":"action unauthorized"}}},
		{"create":{"status":200}}]}`)
	got := map[int]error{}
	if err := itemOutcomes(reply, 7, func(j int, err error) { got[j] = err }); err != nil {
		t.Fatal(err)
	}
	want := map[int]bool{2: false, 3: true, 4: false, 5: false} // index → permanent
	if len(got) != len(want) {
		t.Fatalf("failed items %v, want %v", got, want)
	}
	for j, perm := range want {
		if got[j] == nil || sink.IsPermanent(got[j]) != perm {
			t.Errorf("item %d: %v, want permanent=%v", j, got[j], perm)
		}
	}
	var ie *ItemError
	if !errors.As(got[3], &ie) || ie.Status != 400 || !strings.Contains(ie.Error(), "bad date") {
		t.Errorf("item 3: %v", got[3])
	}
	if err := itemOutcomes([]byte(`{"errors":false,"items":[{"create":{"status":201}}]}`), 2, func(int, error) {}); err == nil {
		t.Error("a reply with fewer items than documents was accepted")
	}
	if err := itemOutcomes([]byte(`{"errors":false}`), 1, func(int, error) {}); err == nil {
		t.Error("a reply without items was accepted")
	}
}

// The reply parser never panics and never reports an item outside the
// request, whatever the server sends.
func FuzzItemOutcomes(f *testing.F) {
	f.Add([]byte(`{"errors":true,"items":[{"create":{"status":429}},{"create":{"status":201}}]}`), 2)
	f.Add([]byte(`{"errors":true,"items":[{},{"x":1},[]]}`), 3)
	f.Add([]byte(`{"items":"x"}`), 1)
	f.Fuzz(func(t *testing.T, reply []byte, n int) {
		if n < 0 || n > 1000 {
			return
		}
		_ = itemOutcomes(reply, n, func(j int, err error) {
			if j < 0 || j >= n || err == nil {
				t.Fatalf("item %d of %d, err %v", j, n, err)
			}
		})
	})
}

func TestPrepare(t *testing.T) {
	ts, err := loadTemplates()
	if err != nil {
		t.Fatal(err)
	}
	s := &Sink{templates: ts, actions: map[sink.Kind][]byte{sink.KindEvents: []byte(`{"create":{"_index":"x","_id":`)}}
	w := &bulkWrite{s: s, b: new(bulkBuffers)}
	for _, tc := range []struct {
		name string
		rec  sink.Record
		doc  string // "" = permanent error
	}{
		{"plain", sink.Record{Kind: sink.KindEvents, ID: "a", Data: []byte(`{"a":1}`)}, `{"a":1}`},
		{"lines compacted", sink.Record{Kind: sink.KindEvents, ID: "a", Data: []byte("{\n  \"a\": \"x y\"\n}\n")}, `{"a":"x y"}`},
		{"id from body", sink.Record{Kind: sink.KindEvents, Data: []byte(`{"event":{"id":"b"}}`)}, `{"event":{"id":"b"}}`},
		{"no id", sink.Record{Kind: sink.KindEvents, Data: []byte(`{"a":1}`)}, ""},
		{"long id", sink.Record{Kind: sink.KindEvents, ID: strings.Repeat("x", 513), Data: []byte(`{}`)}, ""},
		{"bad utf-8 id", sink.Record{Kind: sink.KindEvents, ID: "\xff", Data: []byte(`{}`)}, ""},
		{"not json", sink.Record{Kind: sink.KindEvents, ID: "a", Data: []byte(`{not json`)}, ""},
		{"array", sink.Record{Kind: sink.KindEvents, ID: "a", Data: []byte(`[1]`)}, ""},
		{"two documents", sink.Record{Kind: sink.KindEvents, ID: "a", Data: []byte("{}\n{}")}, ""},
		{"unknown kind", sink.Record{Kind: 9, ID: "a", Data: []byte(`{}`)}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, doc, err := w.prepare(&tc.rec)
			if tc.doc == "" {
				if err == nil {
					t.Fatalf("accepted: %s", doc)
				}
				return
			}
			if err != nil || string(doc) != tc.doc {
				t.Fatalf("prepare = %q, %v; want %q", doc, err, tc.doc)
			}
		})
	}
}

func TestAppendJSONString(t *testing.T) {
	for _, s := range []string{"", "plain-id_1", `q"uote\back`, "tab\tnl\n\x01", "ünï€ode"} {
		var b bytes.Buffer
		appendJSONString(&b, s)
		var back string
		if err := json.Unmarshal(b.Bytes(), &back); err != nil || back != s {
			t.Errorf("%q → %s → %q, %v", s, b.Bytes(), back, err)
		}
	}
}

func TestNewerVersion(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want bool
	}{
		{"1.0.1", "1.0.0", true}, {"1.0.0", "1.0.0", false}, {"1.10.0", "1.9.0", true},
		{"1.9.0", "1.10.0", false}, {"2.0", "1.99.99", true}, {"", "1.0.0", false}, {"1.0.0.1", "1.0.0", true},
	} {
		if got := newerVersion(tc.a, tc.b); got != tc.want {
			t.Errorf("newerVersion(%q, %q) = %v", tc.a, tc.b, got)
		}
	}
}
