package webhook

import (
	"bytes"
	"encoding/json"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/crowsnest-siem/crowsnest/sinks/sink"
	"github.com/crowsnest-siem/crowsnest/sinks/sink/sinktest"
)

// receiver is a real HTTP endpoint (net/http/httptest) that stores what it
// is sent, counted by event.id, and answers as a test tells it to.
type receiver struct {
	srv *httptest.Server

	mu       sync.Mutex
	stored   map[string]int
	requests []*http.Request
	bodies   [][]byte
	// refuse answers 422 to a body containing it.
	refuse []byte
	// answer, when set, answers instead of storing (return 0 to store).
	answer func(w http.ResponseWriter, r *http.Request, body []byte) int
}

func newReceiver(tb testing.TB) *receiver {
	rc := &receiver{stored: map[string]int{}}
	rc.srv = httptest.NewServer(rc)
	tb.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	rc.mu.Lock()
	rc.requests = append(rc.requests, r)
	rc.bodies = append(rc.bodies, body)
	answer, refuse := rc.answer, rc.refuse
	rc.mu.Unlock()
	if answer != nil {
		if code := answer(w, r, body); code != 0 {
			w.WriteHeader(code)
			return
		}
	}
	if refuse != nil && bytes.Contains(body, refuse) {
		http.Error(w, `{"error":"unprocessable"}`, http.StatusUnprocessableEntity)
		return
	}
	ids, err := eventIDs(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	rc.mu.Lock()
	for _, id := range ids {
		rc.stored[id]++
	}
	rc.mu.Unlock()
	w.WriteHeader(http.StatusAccepted)
}

// eventIDs reads the event.id of a document or of each in an array.
func eventIDs(body []byte) ([]string, error) {
	type doc struct {
		Event struct {
			ID string `json:"id"`
		} `json:"event"`
	}
	var docs []doc
	if bytes.HasPrefix(bytes.TrimSpace(body), []byte("[")) {
		if err := json.Unmarshal(body, &docs); err != nil {
			return nil, err
		}
	} else {
		var d doc
		if err := json.Unmarshal(body, &d); err != nil {
			return nil, err
		}
		docs = []doc{d}
	}
	ids := make([]string, len(docs))
	for i, d := range docs {
		ids[i] = d.Event.ID
	}
	return ids, nil
}

func (rc *receiver) Stored(testing.TB) map[string]int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	out := make(map[string]int, len(rc.stored))
	for k, v := range rc.stored {
		out[k] = v
	}
	return out
}

func (rc *receiver) count() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return len(rc.requests)
}

func (rc *receiver) lastRequest() (*http.Request, []byte) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.requests[len(rc.requests)-1], rc.bodies[len(rc.bodies)-1]
}

func (rc *receiver) config() Config {
	c := NewDefaultConfig()
	c.URL = secretURL(rc.srv.URL + "/hooks/T0001/s3cr3t-token")
	return c
}

// receiverStore is one receiver for the conformance suite.
type receiverStore struct {
	*receiver
	cfg Config
}

func (s *receiverStore) Open(tb testing.TB) sink.Sink {
	tb.Helper()
	w, err := New(s.cfg, sinktest.Settings(tb))
	if err != nil {
		tb.Fatalf("open webhook sink: %v", err)
	}
	return w
}

func newTLSServer(tb testing.TB, rc *receiver) *httptest.Server {
	rc.srv = httptest.NewUnstartedServer(rc)
	// The handshakes the test makes fail on purpose; their log is noise.
	rc.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	rc.srv.StartTLS()
	tb.Cleanup(rc.srv.Close)
	return rc.srv
}

func sinkSettings() sink.Settings { return sink.Settings{} }
