package ingress

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// startServer serves h on a loopback port with plain HTTP and the given
// request timeout and in-flight bound, until the test ends.
func startServer(t *testing.T, timeout time.Duration, inFlight int, h http.Handler) *Server {
	t.Helper()
	cfg := NewDefaultConfig("127.0.0.1:0")
	cfg.TLS = TLSConfig{MinVersion: "1.2"}
	cfg.AllowInsecureLoopback = true
	cfg.RequestTimeout = timeout
	cfg.MaxInFlightRequests = inFlight
	srv, err := New(cfg, Settings{Source: "test"}, h)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return srv
}

// readBodyHandler answers 200 once it has the whole body, as the push
// sources do.
var readBodyHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	if _, ok := ReadBody(w, r); !ok {
		return
	}
	Reply(w, http.StatusOK, "ok")
})

// TestRequestTimeoutBoundsSlowBodies: a client that sends its headers and
// then trickles (or withholds) the body must not hold a request slot past
// request_timeout — else a few slow connections would lock the API server's
// audit webhook out. The answer is 408 and the slot is free again.
func TestRequestTimeoutBoundsSlowBodies(t *testing.T) {
	const timeout = 300 * time.Millisecond
	srv := startServer(t, timeout, 1, readBodyHandler)
	addr := srv.Addr().String()

	cases := []struct {
		name    string
		trickle bool // send a byte every 50 ms instead of stalling
	}{
		{"stalled body", false},
		{"trickled body", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			start := time.Now()
			fmt.Fprintf(conn, "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{")
			stop := make(chan struct{})
			defer close(stop)
			if tc.trickle {
				go func() {
					for {
						select {
						case <-stop:
							return
						case <-time.After(50 * time.Millisecond):
							if _, err := conn.Write([]byte(" ")); err != nil {
								return
							}
						}
					}
				}()
			}
			_ = conn.SetReadDeadline(time.Now().Add(10 * timeout))
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatalf("no answer within %s: %v", 10*timeout, err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusRequestTimeout {
				t.Errorf("status %d, want 408", resp.StatusCode)
			}
			if took := time.Since(start); took < timeout || took > 5*timeout {
				t.Errorf("answered after %s, want about request_timeout (%s)", took, timeout)
			}
		})
	}

	// The one slot is free: a well-behaved request is served.
	resp, err := http.Post("http://"+addr+"/", "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("after the slow clients: status %d, want 200", resp.StatusCode)
	}
}

// TestKeptAliveConnectionOutlivesDeadlines: the deadlines set for one request
// must not fail the next request on the same kept-alive connection, however
// long it idled — whatever path answers it (served, or refused early).
func TestKeptAliveConnectionOutlivesDeadlines(t *testing.T) {
	const timeout = 200 * time.Millisecond
	srv := startServer(t, timeout, 4, readBodyHandler)
	url := "http://" + srv.Addr().String() + "/"
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
	t.Cleanup(client.CloseIdleConnections)

	var conns []string
	send := func(method string, want int) {
		t.Helper()
		req, err := http.NewRequest(method, url, strings.NewReader(`{}`))
		if err != nil {
			t.Fatal(err)
		}
		var local string
		req = req.WithContext(httptraceLocalAddr(req.Context(), &local))
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s after idling: %v", method, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body) // drained, or the connection is not reused
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("%s: status %d, want %d", method, resp.StatusCode, want)
		}
		conns = append(conns, local)
	}
	send(http.MethodPost, http.StatusOK)
	time.Sleep(3 * timeout) // past both deadlines of the first request
	send(http.MethodGet, http.StatusMethodNotAllowed)
	time.Sleep(3 * timeout)
	send(http.MethodPost, http.StatusOK)
	if conns[0] != conns[1] || conns[1] != conns[2] {
		t.Fatalf("requests used connections %v; the test needs one kept-alive connection", conns)
	}
}
