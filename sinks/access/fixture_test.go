package access_test

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/crowsnest-siem/crowsnest/daemon/config"
	"github.com/crowsnest-siem/crowsnest/sinks/access"
	"github.com/crowsnest-siem/crowsnest/sinks/sink"
	"github.com/crowsnest-siem/crowsnest/sinks/sink/sinktest"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// exampleConfig is testdata/tenants.yaml, decoded.
func exampleConfig(tb testing.TB) access.Config {
	tb.Helper()
	f, err := os.Open(filepath.Join("testdata", "tenants.yaml"))
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	cfg, err := access.Decode(f)
	if err != nil {
		tb.Fatal(err)
	}
	return cfg
}

// passwords gives every user of c the password <user>-Secret-1.
func passwords(c access.Config) access.Passwords {
	pw := access.Passwords{}
	for _, u := range c.Users() {
		pw[u] = config.Secret(u + "-Secret-1")
	}
	return pw
}

// golden compares got with testdata/name, or rewrites it under -update.
func golden(tb testing.TB, name string, got []byte) {
	tb.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		tb.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		tb.Errorf("%s differs from the output (run with -update after checking it):\ngot\n%s", path, got)
	}
}

// record returns an event (or alert) in namespace ns with event.id id.
func record(tb testing.TB, kind sink.Kind, id, ns string) sink.Record {
	tb.Helper()
	doc := sinktest.EventDoc(id)
	if kind == sink.KindAlerts {
		doc = sinktest.AlertDoc(id, "e-"+id)
	}
	const from = `"namespace":"payments"`
	if bytes.Count(doc, []byte(from)) != 1 {
		tb.Fatalf("the fixture document no longer holds %s once: %s", from, doc)
	}
	doc = bytes.Replace(doc, []byte(from), []byte(`"namespace":"`+ns+`"`), 1)
	return sink.Record{Kind: kind, ID: id, Data: doc, Seq: 1, Delivered: 1}
}
