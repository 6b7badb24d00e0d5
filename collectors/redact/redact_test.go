package redact

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/crowsnest-siem/crowsnest/collectors/publish"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// testConfig is the default config plus a path rule per kind of path.
func testConfig() Config {
	cfg := NewDefaultConfig()
	cfg.Paths = []PathRule{
		{Source: "k8s_audit", Path: "requestObject.spec.containers.#.env.#.value"},
		{Source: "json", Path: "password"},
	}
	return cfg
}

// The secret in every input is TOPSECRET, plain or base64 (VE9QU0VDUkVU).
var secrets = []string{"TOPSECRET", "VE9QU0VDUkVU"}

// TestGolden redacts every testdata/in/<source>__<name>.json and compares
// with testdata/out/; no output may hold the secret, and every output is
// valid JSON.
func TestGolden(t *testing.T) {
	r, err := New(testConfig())
	if err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join("testdata", "in", "*.json"))
	if len(files) == 0 {
		t.Fatal("no inputs")
	}
	for _, in := range files {
		name := filepath.Base(in)
		t.Run(name, func(t *testing.T) {
			source, _, _ := strings.Cut(name, "__")
			data, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			data = bytes.TrimRight(data, "\n")
			orig := bytes.Clone(data)
			out, err := r.Transform(context.Background(), publish.Record{Source: source, Data: data})
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(data, orig) {
				t.Error("Transform modified its input")
			}
			for _, s := range secrets {
				if bytes.Contains(out.Data, []byte(s)) {
					t.Errorf("output still holds %q:\n%s", s, out.Data)
				}
			}
			if !gjson.ValidBytes(out.Data) {
				t.Errorf("output is not valid JSON:\n%s", out.Data)
			}
			golden := filepath.Join("testdata", "out", name)
			if *update {
				if err := os.WriteFile(golden, append(out.Data, '\n'), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (go test -update creates it)", err)
			}
			if !bytes.Equal(append(out.Data, '\n'), want) {
				t.Errorf("differs from %s (go test -update to accept):\n%s", golden, out.Data)
			}
		})
	}
}

func TestNothingToRedactKeepsBytes(t *testing.T) {
	r, err := New(NewDefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	in := []byte(`{"kind":"Event","auditID":"a","stage":"ResponseComplete","verb":"get","objectRef":{"resource":"pods"}}`)
	out, err := r.Transform(context.Background(), publish.Record{Source: "k8s_audit", Data: in})
	if err != nil {
		t.Fatal(err)
	}
	if &out.Data[0] != &in[0] {
		t.Error("a record with nothing to redact was copied")
	}
	off, _ := New(Config{Replacement: "x"})
	secret := []byte(`{"objectRef":{"resource":"secrets"},"requestObject":{"kind":"Secret","data":{"a":"b"}}}`)
	if out, _ := off.Transform(context.Background(), publish.Record{Source: "k8s_audit", Data: secret}); !bytes.Equal(out.Data, secret) {
		t.Error("disabled rules redacted")
	}
}

func TestConfigValidate(t *testing.T) {
	for _, c := range []Config{
		{Replacement: ""},
		{Replacement: `a"b`},
		{Replacement: "x", Paths: []PathRule{{Source: "nope", Path: "a"}}},
		{Replacement: "x", Paths: []PathRule{{Path: "a.*"}}},
		{Replacement: "x", Paths: []PathRule{{Path: ""}}},
	} {
		if c.Validate() == nil {
			t.Errorf("%+v validated", c)
		}
	}
	if err := testConfig().Validate(); err != nil {
		t.Error(err)
	}
}

func FuzzTransform(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "in", "*.json"))
	for _, p := range files {
		b, _ := os.ReadFile(p)
		src, _, _ := strings.Cut(filepath.Base(p), "__")
		f.Add(src, b)
	}
	r, err := New(testConfig())
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, source string, data []byte) {
		valid := gjson.ValidBytes(data)
		out, err := r.Transform(context.Background(), publish.Record{Source: source, Data: data})
		if err != nil {
			return
		}
		if valid && !gjson.ValidBytes(out.Data) {
			t.Fatalf("valid JSON became invalid:\n%s\n->\n%s", data, out.Data)
		}
	})
}

func BenchmarkTransformNoSecret(b *testing.B) {
	r, _ := New(NewDefaultConfig())
	in := []byte(`{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"0b6d2f4e-8a31-4c1e-9d0f-2b7c5e6a1f90","stage":"ResponseComplete","requestURI":"/api/v1/namespaces/shop/pods","verb":"list","user":{"username":"dave@example.com","groups":["developers","system:authenticated"]},"sourceIPs":["198.51.100.23"],"userAgent":"kubectl/v1.30.1","objectRef":{"resource":"pods","namespace":"shop","apiVersion":"v1"},"responseStatus":{"metadata":{},"code":200}}`)
	rec := publish.Record{Source: "k8s_audit", Data: in}
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.Transform(context.Background(), rec); err != nil {
			b.Fatal(err)
		}
	}
}
