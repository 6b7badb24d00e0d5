package harness

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// NATS is a standalone nats-server with JetStream and a file store of its
// own, as deployments run it.
type NATS struct {
	Proc *Proc
	URL  string
	spec Spec
	env  *Env
}

// StartNATS starts nats-server named name with its store under the scenario
// directory, on a fixed port so that a restart keeps the URL the stages hold.
func (e *Env) StartNATS(name string) *NATS {
	e.t.Helper()
	ports := e.Ports(2)
	store := e.Path(name, "store")
	spec := Spec{
		Name: name,
		Path: e.Bin.NATSServer,
		Args: []string{
			"--jetstream", "--store_dir", store,
			"--addr", "127.0.0.1", "--port", strconv.Itoa(ports[0]),
			"--http_port", strconv.Itoa(ports[1]),
			"--server_name", name,
		},
		Dir:      e.Path(name),
		ReadyURL: fmt.Sprintf("http://127.0.0.1:%d/healthz?js-enabled-only=true", ports[1]),
	}
	n := &NATS{URL: fmt.Sprintf("nats://127.0.0.1:%d", ports[0]), spec: spec, env: e}
	n.Proc = e.Start(spec)
	return n
}

// Restart starts the server again on the same store and ports after a Stop
// or Kill.
func (n *NATS) Restart() {
	n.env.t.Helper()
	n.Proc = n.env.Start(n.spec)
}

// Connect opens a connection for checks.
func Connect(url string) (*nats.Conn, jetstream.JetStream, error) {
	nc, err := nats.Connect(url, nats.Name("crowsnest-chaos-check"), nats.Timeout(5*time.Second))
	if err != nil {
		return nil, nil, fmt.Errorf("connect %s: %w", url, err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return nc, js, nil
}

// StreamCensus reads every message stored in stream (up to its last
// sequence when the read starts) and counts the id idOf finds in each.
func StreamCensus(ctx context.Context, js jetstream.JetStream, stream string, idOf func(jetstream.Msg) (string, error)) (*Census, error) {
	c := NewCensus("stream " + stream)
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return nil, fmt.Errorf("census of %s: %w", stream, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("census of %s: %w", stream, err)
	}
	if info.State.Msgs == 0 {
		return c, nil
	}
	last := info.State.LastSeq
	cons, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy})
	if err != nil {
		return nil, fmt.Errorf("census of %s: %w", stream, err)
	}
	for {
		batch, err := cons.FetchNoWait(1000)
		if err != nil {
			return nil, fmt.Errorf("census of %s: %w", stream, err)
		}
		n := 0
		for m := range batch.Messages() {
			n++
			id, err := idOf(m)
			if err != nil {
				c.Unreadable++
				c.Records++
			} else {
				c.Add(id)
			}
			meta, err := m.Metadata()
			if err != nil {
				return nil, fmt.Errorf("census of %s: %w", stream, err)
			}
			if meta.Sequence.Stream >= last {
				return c, nil
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			return nil, fmt.Errorf("census of %s: %w", stream, err)
		}
		if n == 0 {
			if err := ctx.Err(); err != nil {
				return nil, fmt.Errorf("census of %s: stopped before sequence %d: %w", stream, last, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// EventID reads event.id from an event or alert document.
func EventID(body []byte) (string, error) {
	var doc struct {
		Event struct {
			ID string `json:"id"`
		} `json:"event"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return "", err
	}
	if doc.Event.ID == "" {
		return "", errors.New("no event.id")
	}
	return doc.Event.ID, nil
}

// MsgEventID is EventID of a stream message.
func MsgEventID(m jetstream.Msg) (string, error) { return EventID(m.Data()) }

// MarkerOf returns an idOf that finds the first match of re in a message's
// body: how a dead-letter record is matched to the bad line it came from.
func MarkerOf(re *regexp.Regexp) func(jetstream.Msg) (string, error) {
	return func(m jetstream.Msg) (string, error) {
		b := re.Find(m.Data())
		if b == nil {
			return "", fmt.Errorf("no marker in %.120q (subject %s, error %q)", m.Data(), m.Subject(), m.Headers().Get("Crowsnest-Error"))
		}
		return string(b), nil
	}
}
