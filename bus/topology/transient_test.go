package topology_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

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

func TestRetryTransient(t *testing.T) {
	refused := errors.New("subjects differ")
	for _, tc := range []struct {
		name      string
		errs      []error // f's answers, in turn; nil after the last
		limit     time.Duration
		wantCalls int
		wantErr   error
	}{
		{"first answer", nil, time.Minute, 1, nil},
		{"transient, then an answer", []error{nats.ErrTimeout, nats.ErrNoResponders}, time.Minute, 3, nil},
		{"a refusal is not asked again", []error{nats.ErrTimeout, refused}, time.Minute, 2, refused},
		{"limit reached", []error{nats.ErrTimeout, nats.ErrTimeout, nats.ErrTimeout}, 100 * time.Millisecond, 1, nats.ErrTimeout},
	} {
		t.Run(tc.name, func(t *testing.T) {
			calls := 0
			err := topology.RetryTransient(context.Background(), tc.limit, func() error {
				calls++
				if calls <= len(tc.errs) {
					return tc.errs[calls-1]
				}
				return nil
			})
			if calls != tc.wantCalls || !errors.Is(err, tc.wantErr) || (tc.wantErr == nil && err != nil) {
				t.Errorf("%d calls, error %v; want %d calls, error %v", calls, err, tc.wantCalls, tc.wantErr)
			}
		})
	}
	t.Run("ctx ended", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		calls := 0
		err := topology.RetryTransient(ctx, time.Minute, func() error {
			calls++
			cancel()
			return nats.ErrTimeout
		})
		if calls != 1 || !errors.Is(err, nats.ErrTimeout) {
			t.Errorf("%d calls, error %v; want 1 call and the timeout", calls, err)
		}
	})
}

// The calls a stage makes as it starts, made while the server is away (a
// cluster node restarting under the client), wait for it instead of failing
// at the first timeout.
func TestStartCallsWaitOutAnAbsentServer(t *testing.T) {
	decls, err := topology.SinkConsumers("file", topology.NewDefaultConfig().Consumers.Sink)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		call func(context.Context, jetstream.JetStream) error
	}{
		{"EnsureConsumer", func(ctx context.Context, js jetstream.JetStream) error {
			_, err := topology.EnsureConsumer(ctx, js, decls[0])
			return err
		}},
		{"LookupStream", func(ctx context.Context, js jetstream.JetStream) error {
			_, err := topology.LookupStream(ctx, js, topology.EventsStream)
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
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
			srv.Shutdown()
			back := natstest.RestartAfter(t, cfg, 1500*time.Millisecond)
			start := time.Now()
			err = tc.call(ctx, js)
			back()
			if err != nil {
				t.Fatalf("%s across the server's absence: %v", tc.name, err)
			}
			if took := time.Since(start); took < time.Second {
				t.Errorf("answered after %s, before the server was back: the call never waited", took)
			}
			t.Logf("answered %s after the first attempt", time.Since(start).Round(time.Millisecond))
		})
	}
}
