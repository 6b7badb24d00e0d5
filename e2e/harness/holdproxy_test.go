package harness

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// A held answer: the store took the write, the client never hears of it;
// requests before and after pass through unchanged.
func TestHoldProxy(t *testing.T) {
	var writes atomic.Int64
	store := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if ElasticsearchBulk(r) {
			writes.Add(1)
		}
		w.Header().Set("X-Store", "yes")
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write([]byte("stored " + string(b)))
	}))
	defer store.Close()
	p, err := StartHoldProxy(store.URL, ElasticsearchBulk)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	post := func(path, body string) (int, string, error) {
		resp, err := http.Post(p.URL+path, "application/json", strings.NewReader(body))
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if resp.Header.Get("X-Store") != "yes" {
			t.Errorf("%s: store's header not passed on", path)
		}
		return resp.StatusCode, string(b), err
	}

	if code, body, err := post("/_bulk", "a"); err != nil || code != http.StatusCreated || body != "stored a" {
		t.Fatalf("unarmed: %d %q %v", code, body, err)
	}
	held := p.Arm()
	// A request the matcher does not select passes while armed.
	if code, body, err := post("/_search", "q"); err != nil || code != http.StatusCreated || body != "stored q" {
		t.Fatalf("armed, not matching: %d %q %v", code, body, err)
	}
	done := make(chan error, 1)
	go func() {
		_, _, err := post("/idx/_bulk", "b")
		done <- err
	}()
	select {
	case h := <-held:
		if h.Status != http.StatusCreated || string(h.Response) != "stored b" || h.Path != "/idx/_bulk" || h.RequestBytes != 1 {
			t.Errorf("held %+v", h)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no request held")
	}
	if writes.Load() != 2 {
		t.Errorf("store saw %d bulk writes, want 2 (the held one reached it)", writes.Load())
	}
	select {
	case err := <-done:
		t.Fatalf("the client got an answer while it was held (err %v)", err)
	case <-time.After(200 * time.Millisecond):
	}
	p.Disarm()
	if err := <-done; err == nil {
		t.Error("the held request succeeded after Disarm; want its connection cut")
	}
	if code, body, err := post("/_bulk", "c"); err != nil || code != http.StatusCreated || body != "stored c" {
		t.Fatalf("after disarm: %d %q %v", code, body, err)
	}
}

func TestClickHouseInsertInto(t *testing.T) {
	match := ClickHouseInsertInto("events", "alerts")
	for q, want := range map[string]bool{
		"/?query=INSERT+INTO+db.events+%28event_id%29+FORMAT+Native": true,
		"/?query=+insert+into+%60db%60.%60alerts%60":                 true,
		"/?query=INSERT+INTO+events%28a%29":                          true,
		"/?query=INSERT+INTO+schema_migrations+%28version%29":        false,
		"/?query=INSERT+INTO+db.events_rollup":                       false,
		"/?query=SELECT+1":                                           false,
		"/":                                                          false,
	} {
		r := httptest.NewRequest(http.MethodPost, q, nil)
		if got := match(r); got != want {
			t.Errorf("%s: %v, want %v", q, got, want)
		}
	}
}
