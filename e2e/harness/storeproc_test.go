package harness

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestStoreProcs starts a scenario's own Elasticsearch and ClickHouse
// engine, writes to each, kills and stops them, restarts them on the same
// port and data, and reads the writes back. It needs the stores named by
// the CROWSNEST_CHAOS_* variables (see StoreSetup).
func TestStoreProcs(t *testing.T) {
	src, err := SourceRoot(".")
	if err != nil {
		t.Fatal(err)
	}
	setup := StoreSetupFromEnv(src)
	if m := setup.Missing(); m != "" {
		t.Skipf("a scenario's own stores need: %s", m)
	}
	env := NewEnv(t, Binaries{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	es := env.StartElasticsearch("es", setup)
	ch := env.StartClickHouseEngine("ch", setup)

	req, err := http.NewRequestWithContext(ctx, http.MethodPut, es.URL+"/probe/_doc/1?refresh=true", strings.NewReader(`{"n":1}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("index a document: %s", resp.Status)
	}
	for _, q := range []string{"CREATE DATABASE IF NOT EXISTS probe", "CREATE TABLE probe.t (n UInt32) ENGINE = MergeTree ORDER BY n", "INSERT INTO probe.t VALUES (1), (2)"} {
		if _, err := ClickHouseQuery(ctx, ch.URL, q); err != nil {
			t.Fatal(err)
		}
	}

	if err := es.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := ch.Stop(30 * time.Second); err != nil {
		t.Errorf("stop the ClickHouse engine: %v", err)
	}
	if _, err := httpGet(ctx, es.URL+"/"); err == nil {
		t.Error("Elasticsearch still answers after Kill")
	}
	if _, err := httpGet(ctx, ch.URL+"/ping"); err == nil {
		t.Error("the ClickHouse engine still answers after Stop")
	}
	es.Restart()
	ch.Restart()
	if n, err := ElasticsearchCount(ctx, es.URL, "probe"); err != nil || n != 1 {
		t.Errorf("after the restart Elasticsearch holds %d documents (%v), want 1", n, err)
	}
	out, err := ClickHouseQuery(ctx, ch.URL, "SELECT count() FROM probe.t FORMAT TSV")
	if err != nil || strings.TrimSpace(out) != "2" {
		t.Errorf("after the restart ClickHouse holds %q rows (%v), want 2", out, err)
	}
}
