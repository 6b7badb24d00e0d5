package topology_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/crowsnest-siem/crowsnest/bus/embedded"
	"github.com/crowsnest-siem/crowsnest/bus/embedded/natstest"
	"github.com/crowsnest-siem/crowsnest/bus/topology"
)

func TestTransient(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{fmt.Errorf("look up stream X: %w", context.DeadlineExceeded), true},
		{errors.Join(errors.New("other"), fmt.Errorf("x: %w", nats.ErrTimeout)), true},
		{nats.ErrNoResponders, true},
		{fmt.Errorf("x: %w", jetstream.ErrJetStreamNotEnabled), true},
		{&jetstream.APIError{Code: 503, ErrorCode: 10008, Description: "JetStream system temporarily unavailable"}, true},
		{&jetstream.APIError{Code: 400, ErrorCode: 10058, Description: "stream name already in use"}, false},
		{fmt.Errorf("x: %w", nats.ErrPermissionViolation), false},
		{nats.ErrConnectionClosed, false},
		{errors.New("subjects differ"), false},
	} {
		if got := topology.Transient(tc.err); got != tc.want {
			t.Errorf("Transient(%v) = %t, want %t", tc.err, got, tc.want)
		}
	}
}

// EnsureConsumer called while the server is away (a cluster node
// restarting under the client) waits for it instead of failing at the first
// timeout.
func TestEnsureConsumerWaitsOutAnAbsentServer(t *testing.T) {
	cfg := natstest.Config(t)
	srv := natstest.StartWith(t, cfg)
	cfg.Port = srv.NATS().Addr().(*net.TCPAddr).Port
	nc, err := nats.Connect(srv.ClientURL(), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc, jetstream.WithDefaultTimeout(500*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	// No deadline on ctx: each call then takes the short default timeout.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := topology.Ensure(ctx, js, topology.NewDefaultConfig()); err != nil {
		t.Fatal(err)
	}
	decls, err := topology.SinkConsumers("file", topology.NewDefaultConfig().Consumers.Sink)
	if err != nil {
		t.Fatal(err)
	}
	srv.Shutdown()
	back := make(chan *embedded.Server, 1)
	go func() {
		time.Sleep(1500 * time.Millisecond)
		s, err := embedded.Start(ctx, cfg, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Errorf("restart the server: %v", err)
		}
		back <- s
	}()
	start := time.Now()
	_, err = topology.EnsureConsumer(ctx, js, decls[0])
	if s := <-back; s != nil {
		t.Cleanup(s.Shutdown)
	}
	if err != nil {
		t.Fatalf("ensure consumer across the server's absence: %v", err)
	}
	t.Logf("consumer ensured %s after the first attempt", time.Since(start).Round(time.Millisecond))
}
