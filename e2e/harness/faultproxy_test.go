package harness

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestParseBulk(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		want       []BulkItem
		wantErr    bool
	}{
		{name: "create and index", body: "{\"create\":{\"_index\":\"a\",\"_id\":\"1\"}}\n{\"x\":1}\n{\"index\":{\"_id\":\"2\"}}\n{\"x\":2}\n",
			want: []BulkItem{{"create", "a", "1"}, {"index", "", "2"}}},
		{name: "delete has no document", body: "{\"delete\":{\"_index\":\"a\",\"_id\":\"1\"}}\n{\"create\":{\"_id\":\"2\"}}\n{}\n",
			want: []BulkItem{{"delete", "a", "1"}, {"create", "", "2"}}},
		{name: "no trailing newline", body: "{\"create\":{\"_id\":\"1\"}}\n{}", want: []BulkItem{{"create", "", "1"}}},
		{name: "empty", body: "", want: nil},
		{name: "not an action", body: "{\"x\":1}\n{}\n", wantErr: true},
		{name: "two keys", body: "{\"create\":{},\"index\":{}}\n{}\n", wantErr: true},
		{name: "action without document", body: "{\"create\":{\"_id\":\"1\"}}\n", wantErr: true},
		{name: "blank document line", body: "{\"create\":{\"_id\":\"1\"}}\n  \n{\"x\":1}\n", wantErr: true},
		{name: "not JSON", body: "create 1\n", wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseBulk([]byte(tc.body))
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestKeepBulk(t *testing.T) {
	body := []byte("{\"create\":{\"_id\":\"1\"}}\n{\"n\":1}\n{\"delete\":{\"_id\":\"2\"}}\n{\"create\":{\"_id\":\"3\"}}\n{\"n\":3}\n")
	items, err := parseBulk(body)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		drop []bool
		want string
	}{
		{[]bool{false, false, false}, string(body)},
		{[]bool{true, false, false}, "{\"delete\":{\"_id\":\"2\"}}\n{\"create\":{\"_id\":\"3\"}}\n{\"n\":3}\n"},
		{[]bool{false, true, false}, "{\"create\":{\"_id\":\"1\"}}\n{\"n\":1}\n{\"create\":{\"_id\":\"3\"}}\n{\"n\":3}\n"},
		{[]bool{false, false, true}, "{\"create\":{\"_id\":\"1\"}}\n{\"n\":1}\n{\"delete\":{\"_id\":\"2\"}}\n"},
		{[]bool{true, true, true}, ""},
	} {
		if got := string(keepBulk(body, items, tc.drop)); got != tc.want {
			t.Errorf("drop %v:\ngot  %q\nwant %q", tc.drop, got, tc.want)
		}
	}
}

// TestFaultProxyElasticsearch drives each action against the real
// development Elasticsearch and checks both what the client was answered
// and what the store really holds afterwards.
func TestFaultProxyElasticsearch(t *testing.T) {
	es := strings.TrimRight(os.Getenv("CROWSNEST_TEST_ELASTICSEARCH_URL"), "/")
	if es == "" {
		t.Skip("needs CROWSNEST_TEST_ELASTICSEARCH_URL (make services-up prints it)")
	}
	run := fmt.Sprintf("faultproxy-%d", time.Now().UnixNano()%1e10)
	ids := []string{"a", "b", "c", "d"}
	isBD := func(_ int, it BulkItem) bool { return it.ID == "b" || it.ID == "d" }

	type result struct {
		status   int      // 0: the connection failed
		items    []int    // per-item statuses of a 200 answer
		errTypes []string // per-item error types
		err      error
	}
	for _, tc := range []struct {
		name        string
		rule        func(held chan<- struct{}, release <-chan struct{}) Rule
		wantStatus  int // 0: a connection error (reset)
		wantItems   []int
		wantStored  int
		wantCounts  func(c FaultCounts) string // "" when right
		wantFailedB int                        // ItemCount.Failed of id b
	}{
		{
			name:       "pass",
			rule:       func(chan<- struct{}, <-chan struct{}) Rule { return PassAll },
			wantStatus: 200, wantItems: []int{201, 201, 201, 201}, wantStored: 4,
			wantCounts: func(c FaultCounts) string {
				return expect(c.Passed == 1 && c.ItemsArrived == 4 && c.ItemsInjected == 0 && c.ItemsLost == 0, c)
			},
		},
		{
			name: "fail items 429",
			rule: func(chan<- struct{}, <-chan struct{}) Rule {
				return func(*ProxyRequest) Decision { return Decision{Action: FailItems, Fail: isBD} }
			},
			wantStatus: 200, wantItems: []int{201, 429, 201, 429}, wantStored: 2, wantFailedB: 1,
			wantCounts: func(c FaultCounts) string {
				return expect(c.ItemsRewritten == 1 && c.ItemsInjected == 2 && c.ItemsLost == 0 && c.Passed == 0, c)
			},
		},
		{
			name: "fail every item 503: nothing forwarded",
			rule: func(chan<- struct{}, <-chan struct{}) Rule {
				return func(*ProxyRequest) Decision {
					return Decision{Action: FailItems, Status: 503, Fail: func(int, BulkItem) bool { return true }}
				}
			},
			wantStatus: 200, wantItems: []int{503, 503, 503, 503}, wantStored: 0, wantFailedB: 1,
			wantCounts: func(c FaultCounts) string { return expect(c.ItemsInjected == 4, c) },
		},
		{
			name: "reject whole",
			rule: func(chan<- struct{}, <-chan struct{}) Rule {
				return func(*ProxyRequest) Decision { return Decision{Action: Reject} }
			},
			wantStatus: 429, wantStored: 0, wantFailedB: 1,
			wantCounts: func(c FaultCounts) string { return expect(c.Rejected == 1 && c.ItemsLost == 4, c) },
		},
		{
			name: "reset before",
			rule: func(chan<- struct{}, <-chan struct{}) Rule {
				return func(*ProxyRequest) Decision { return Decision{Action: ResetBefore} }
			},
			wantStatus: 0, wantStored: 0, wantFailedB: 1,
			wantCounts: func(c FaultCounts) string { return expect(c.ResetsBefore == 1 && c.ItemsLost == 4, c) },
		},
		{
			name: "reset after: written, answer lost",
			rule: func(chan<- struct{}, <-chan struct{}) Rule {
				return func(*ProxyRequest) Decision { return Decision{Action: ResetAfter} }
			},
			wantStatus: 0, wantStored: 4, wantFailedB: 1,
			wantCounts: func(c FaultCounts) string { return expect(c.ResetsAfter == 1 && c.ItemsLost == 4, c) },
		},
		{
			name: "hold: written, not yet answered",
			rule: func(held chan<- struct{}, release <-chan struct{}) Rule {
				return func(r *ProxyRequest) Decision {
					if !r.Bulk {
						return Decision{}
					}
					return Decision{Action: Pass, Hold: func(*ProxyRequest) { held <- struct{}{}; <-release }}
				}
			},
			wantStatus: 200, wantItems: []int{201, 201, 201, 201}, wantStored: 4,
			wantCounts: func(c FaultCounts) string { return expect(c.Held == 1 && c.Passed == 1, c) },
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			index := run + "-" + strings.ToLower(strings.ReplaceAll(sanitize(tc.name), "_", "-"))
			t.Cleanup(func() { deleteIndex(es, index) })
			p, err := NewFaultProxy(es)
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			held, release := make(chan struct{}, 1), make(chan struct{})
			p.SetRule(tc.rule(held, release))

			var body strings.Builder
			for _, id := range ids {
				fmt.Fprintf(&body, "{\"create\":{\"_index\":%q,\"_id\":%q}}\n{\"n\":%q}\n", index, id, id)
			}
			done := make(chan result, 1)
			go func() {
				var r result
				resp, err := http.Post(p.URL()+"/_bulk?refresh=true", "application/x-ndjson", strings.NewReader(body.String()))
				if err != nil {
					r.err = err
					done <- r
					return
				}
				defer resp.Body.Close()
				r.status = resp.StatusCode
				b, _ := io.ReadAll(resp.Body)
				var ans struct {
					Items []map[string]struct {
						Status int `json:"status"`
						Error  struct {
							Type string `json:"type"`
						} `json:"error"`
					} `json:"items"`
				}
				if resp.StatusCode == 200 {
					if err := json.Unmarshal(b, &ans); err != nil {
						r.err = fmt.Errorf("answer %s: %w", b, err)
					}
					for _, it := range ans.Items {
						for _, v := range it {
							r.items = append(r.items, v.Status)
							r.errTypes = append(r.errTypes, v.Error.Type)
						}
					}
				}
				done <- r
			}()

			if tc.name == "hold: written, not yet answered" {
				select {
				case <-held:
				case <-time.After(30 * time.Second):
					t.Fatal("the answer was never held")
				}
				// The store holds the documents, the client has no answer.
				if n := storedCount(t, es, index); n != 4 {
					t.Errorf("while held: %d documents stored, want 4", n)
				}
				select {
				case r := <-done:
					t.Fatalf("answered while held: %+v", r)
				case <-time.After(300 * time.Millisecond):
				}
				close(release)
			}
			var r result
			select {
			case r = <-done:
			case <-time.After(time.Minute):
				t.Fatal("no answer")
			}
			if tc.wantStatus == 0 {
				if r.err == nil || !errors.Is(r.err, syscall.ECONNRESET) && !strings.Contains(r.err.Error(), "EOF") {
					t.Errorf("want a reset connection, got status %d err %v", r.status, r.err)
				}
			} else {
				if r.err != nil {
					t.Fatal(r.err)
				}
				if r.status != tc.wantStatus || fmt.Sprint(r.items) != fmt.Sprint(tc.wantItems) {
					t.Errorf("answered %d items %v, want %d items %v", r.status, r.items, tc.wantStatus, tc.wantItems)
				}
				for i, s := range r.items {
					if s == 429 && r.errTypes[i] != "es_rejected_execution_exception" {
						t.Errorf("item %d: 429 with error type %q", i, r.errTypes[i])
					}
				}
			}
			if n := storedCount(t, es, index); n != tc.wantStored {
				t.Errorf("store holds %d documents, want %d", n, tc.wantStored)
			}
			if msg := tc.wantCounts(p.Counts()); msg != "" {
				t.Error(msg)
			}
			items := p.Items()
			if items["b"].Arrived != 1 || items["b"].Failed != tc.wantFailedB {
				t.Errorf("id b: %+v, want arrived 1 failed %d", items["b"], tc.wantFailedB)
			}
		})
	}

	// Anything else passes through, the product header with it.
	p, err := NewFaultProxy(es)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	resp, err := http.Get(p.URL() + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("X-Elastic-Product") != "Elasticsearch" {
		t.Errorf("GET / through the proxy: %s, X-Elastic-Product %q", resp.Status, resp.Header.Get("X-Elastic-Product"))
	}
	if c := p.Counts(); c.Passed != 1 || c.BulkRequests != 0 {
		t.Errorf("GET /: counts %+v", c)
	}
}

// TestFaultProxyUpstreamDown: a store that cannot be reached is a 502 and
// every document of the request counts as failed.
func TestFaultProxyUpstreamDown(t *testing.T) {
	port, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	p, err := NewFaultProxy(fmt.Sprintf("http://127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	resp, err := http.Post(p.URL()+"/_bulk", "application/x-ndjson", strings.NewReader("{\"create\":{\"_id\":\"x\"}}\n{}\n"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadGateway {
		t.Errorf("status %d, want 502", resp.StatusCode)
	}
	if c := p.Counts(); c.UpstreamErrors != 1 || c.ItemsLost != 1 || p.Items()["x"].Failed != 1 {
		t.Errorf("counts %+v items %+v", c, p.Items())
	}
	if _, err := NewFaultProxy("127.0.0.1:9200"); err == nil {
		t.Error("an upstream without a scheme was accepted")
	}
}

func expect(ok bool, c FaultCounts) string {
	if ok {
		return ""
	}
	return fmt.Sprintf("counts %+v", c)
}

func storedCount(t *testing.T, es, index string) int {
	t.Helper()
	resp, err := http.Get(es + "/" + index + "/_count?ignore_unavailable=true&allow_no_indices=true")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r struct {
		Count int `json:"count"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatal(err)
	}
	return r.Count
}

func deleteIndex(es, index string) {
	req, err := http.NewRequest(http.MethodDelete, es+"/"+index+"?ignore_unavailable=true", nil)
	if err != nil {
		return
	}
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
	}
}

// FuzzParseBulk: any body parses or is refused without a panic, and a body
// that parses, rebuilt keeping every document, parses to the same items;
// dropping the first document drops exactly it.
func FuzzParseBulk(f *testing.F) {
	f.Add([]byte("{\"create\":{\"_index\":\"a\",\"_id\":\"1\"}}\n{\"x\":1}\n{\"delete\":{\"_id\":\"2\"}}\n"))
	f.Add([]byte("{\"index\":{}}\n{}"))
	f.Add([]byte("\n\n{\"create\":{\"_id\":\"\\u0000\"}}\r\n{}\r\n"))
	f.Fuzz(func(t *testing.T, body []byte) {
		items, err := parseBulk(body)
		if err != nil {
			return
		}
		drop := make([]bool, len(items))
		again, err := parseBulk(keepBulk(body, items, drop))
		if err != nil || fmt.Sprint(again) != fmt.Sprint(items) {
			t.Fatalf("rebuilt body parses to %v (%v), want %v", again, err, items)
		}
		if len(items) == 0 {
			return
		}
		drop[0] = true
		rest, err := parseBulk(keepBulk(body, items, drop))
		if err != nil || fmt.Sprint(rest) != fmt.Sprint(items[1:]) {
			t.Fatalf("without the first document: %v (%v), want %v", rest, err, items[1:])
		}
	})
}
