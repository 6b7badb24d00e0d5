package stage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/crowsnest-siem/crowsnest/bus/authz"
	"github.com/crowsnest-siem/crowsnest/bus/embedded"
	"github.com/crowsnest-siem/crowsnest/bus/embedded/natstest"
	"github.com/crowsnest-siem/crowsnest/bus/natsconn"
	"github.com/crowsnest-siem/crowsnest/bus/topology"
)

type identities struct {
	srv   *embedded.Server
	seeds string
}

func startWithIdentities(t *testing.T) *identities {
	t.Helper()
	seeds := t.TempDir()
	users, err := authz.Users(authz.Config{Collectors: []string{"node1"}, Sinks: []string{"ch"}}, seeds)
	if err != nil {
		t.Fatal(err)
	}
	cfg := natstest.Config(t)
	cfg.NKeyUsers = authz.NkeyUsers(users)
	return &identities{srv: natstest.StartWith(t, cfg), seeds: seeds}
}

func (b *identities) natsConfig(id authz.Identity) natsconn.Config {
	cfg := natsconn.NewDefaultConfig()
	cfg.URL = b.srv.ClientURL()
	cfg.NKeyFile = authz.SeedFile(b.seeds, id)
	cfg.InboxPrefix = id.InboxPrefix()
	return cfg
}

func (b *identities) connect(t *testing.T, id authz.Identity) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	return b.connectWith(t, b.natsConfig(id))
}

func (b *identities) connectWith(t *testing.T, cfg natsconn.Config) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	nc, js, err := natsconn.Connect(ctx, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc, js
}

var (
	admin     = authz.Identity{Role: authz.RoleAdmin}
	processor = authz.Identity{Role: authz.RoleProcessor}
	sinkCH    = authz.Identity{Role: authz.RoleSink, ID: "ch"}
	collector = authz.Identity{Role: authz.RoleCollector, ID: "node1"}
)

// TestPrepareTopologyWithIdentities walks the production path: stages
// without management rights are told what is missing and how to create it,
// fast, whether they were set to ensure or to verify; the admin creates it;
// then every stage starts.
func TestPrepareTopologyWithIdentities(t *testing.T) {
	b := startWithIdentities(t)
	cfg := topology.NewDefaultConfig()
	log := slog.New(slog.DiscardHandler)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	tests := []struct {
		name    string
		id      authz.Identity
		ensure  bool
		streams []string
		noInbox bool
		want    error
		says    []string
	}{
		{"sink verifies before setup", sinkCH, false, topology.SinkStreams(), false, topology.ErrMissing, nil},
		{"processor verifies before setup", processor, false, topology.ProcessorStreams(), false, topology.ErrMissing, nil},
		{"sink set to ensure", sinkCH, true, nil, false, ErrNoManagementRights, nil},
		{"processor set to ensure", processor, true, nil, false, ErrNoManagementRights, nil},
		{"collector set to ensure", collector, true, nil, false, ErrNoManagementRights, nil},
		{"processor without its inbox prefix", processor, false, topology.ProcessorStreams(), true, ErrInboxRefused, []string{"nats.inbox_prefix"}},
		{"admin without its inbox prefix", admin, true, nil, true, ErrInboxRefused, []string{"nats.inbox_prefix"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ncfg := b.natsConfig(tt.id)
			if tt.noInbox {
				ncfg.InboxPrefix = ""
			}
			nc, js := b.connectWith(t, ncfg)
			start := time.Now()
			err := PrepareTopology(ctx, nc, js, tt.ensure, cfg, tt.streams, log)
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			says := tt.says
			if says == nil {
				says = []string{topology.SetupCommand, "ensure_topology: false"}
			}
			for _, s := range says {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not say %q", err, s)
				}
			}
			if errors.Is(err, topology.ErrMissing) && !strings.Contains(err.Error(), topology.EventsStream) {
				t.Errorf("error %q does not name the missing events stream", err)
			}
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("took %s: a refusal must not wait out request timeouts", d)
			}
		})
	}

	// The admin sets up; then the stages verify, and the processor, which
	// may inspect every stream it uses, even passes an ensure that has
	// nothing to change.
	anc, ajs := b.connect(t, admin)
	if err := PrepareTopology(ctx, anc, ajs, true, cfg, nil, log); err != nil {
		t.Fatalf("admin: %v", err)
	}
	for _, tt := range []struct {
		id      authz.Identity
		ensure  bool
		streams []string
	}{
		{sinkCH, false, topology.SinkStreams()},
		{processor, false, topology.ProcessorStreams()},
		{processor, true, nil},
		{collector, false, nil},
	} {
		nc, js := b.connect(t, tt.id)
		if err := PrepareTopology(ctx, nc, js, tt.ensure, cfg, tt.streams, log); err != nil {
			t.Errorf("%s (ensure %v) after setup: %v", tt.id.Name(), tt.ensure, err)
		}
	}
}

type testRoot struct {
	Common `yaml:",inline"`
}

func (r *testRoot) Shared() *Common { return &r.Common }
func (r *testRoot) Validate() error { return r.Common.Validate() }

// TestStartAsAnIdentity runs the shared start-up from a config file naming
// the sink's seed by path: before setup it fails naming the missing streams
// and never calls run; after, run gets a working connection.
func TestStartAsAnIdentity(t *testing.T) {
	b := startWithIdentities(t)
	path := filepath.Join(t.TempDir(), "crowsnest.yaml")
	conf := fmt.Sprintf("ensure_topology: false\nnats:\n  url: %s\n  nkey_file: %s\n  inbox_prefix: %s\n",
		b.srv.ClientURL(), authz.SeedFile(b.seeds, sinkCH), sinkCH.InboxPrefix())
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ran := false
	run := func(ctx context.Context, env *Env) error {
		ran = true
		_, err := env.JetStream.Stream(ctx, topology.EventsStream)
		return err
	}
	o := options{streams: topology.SinkStreams()}
	root := &testRoot{Common: NewCommon()}
	err := start(ctx, "crowsnest-sink", path, root, io.Discard, o, run)
	if !errors.Is(err, topology.ErrMissing) || ran {
		t.Fatalf("before setup: start = %v (ran %v), want the missing topology and no run", err, ran)
	}
	anc, ajs := b.connect(t, admin)
	if err := PrepareTopology(ctx, anc, ajs, true, topology.NewDefaultConfig(), nil, nil); err != nil {
		t.Fatal(err)
	}
	root = &testRoot{Common: NewCommon()}
	if err := start(ctx, "crowsnest-sink", path, root, io.Discard, o, run); err != nil || !ran {
		t.Fatalf("after setup: start = %v (ran %v)", err, ran)
	}
}

// TestStartWaitsForSetup: a stage verifying the topology that starts before
// the admin's nats-setup (a Helm hook Job runs after the Deployments) waits
// for the streams and starts once they exist, instead of exiting.
func TestStartWaitsForSetup(t *testing.T) {
	b := startWithIdentities(t)
	path := filepath.Join(t.TempDir(), "crowsnest.yaml")
	listen := freeAddr(t)
	conf := fmt.Sprintf("ensure_topology: false\nnats:\n  url: %s\n  nkey_file: %s\n  inbox_prefix: %s\ntelemetry:\n  listen: %s\n",
		b.srv.ClientURL(), authz.SeedFile(b.seeds, sinkCH), sinkCH.InboxPrefix(), listen)
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ran, probed := make(chan struct{}), make(chan struct{})
	var readyInRun int
	run := func(ctx context.Context, env *Env) error {
		close(ran)
		readyInRun, _ = readyz(t, listen)
		close(probed)
		_, err := env.JetStream.Stream(ctx, topology.EventsStream)
		return err
	}
	done := make(chan error, 1)
	began := time.Now()
	go func() {
		o := options{streams: topology.SinkStreams(), awaitSetup: 20 * time.Second}
		done <- start(ctx, "crowsnest-sink", path, &testRoot{Common: NewCommon()}, io.Discard, o, run)
	}()
	time.Sleep(1500 * time.Millisecond)
	select {
	case err := <-done:
		t.Fatalf("start returned before setup: %v", err)
	case <-ran:
		t.Fatal("run started before setup")
	default:
	}
	// Connected to NATS, but not ready: the streams are missing.
	if code, body := readyz(t, listen); code != http.StatusServiceUnavailable || !strings.Contains(body, `"topology"`) || !strings.Contains(body, `"nats":"ok"`) {
		t.Fatalf("/readyz while waiting for setup = %d %s, want 503 naming the topology", code, body)
	}
	anc, ajs := b.connect(t, admin)
	if err := PrepareTopology(ctx, anc, ajs, true, topology.NewDefaultConfig(), nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("start after setup: %v", err)
	}
	select {
	case <-ran:
	default:
		t.Fatal("run never called")
	}
	<-probed
	if readyInRun != http.StatusOK {
		t.Errorf("/readyz once running = %d, want 200", readyInRun)
	}
	t.Logf("started %s after the first attempt, once the admin had set up", time.Since(began).Round(time.Millisecond))

	// With a bound shorter than the setup takes, it gives up naming the
	// missing streams.
	b2 := startWithIdentities(t)
	conf = fmt.Sprintf("ensure_topology: false\nnats:\n  url: %s\n  nkey_file: %s\n  inbox_prefix: %s\n",
		b2.srv.ClientURL(), authz.SeedFile(b2.seeds, sinkCH), sinkCH.InboxPrefix())
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	began = time.Now()
	o := options{streams: topology.SinkStreams(), awaitSetup: time.Second}
	err := start(ctx, "crowsnest-sink", path, &testRoot{Common: NewCommon()}, io.Discard, o, func(context.Context, *Env) error { return nil })
	if !errors.Is(err, topology.ErrMissing) {
		t.Fatalf("no setup within the bound: %v, want the missing topology", err)
	}
	if d := time.Since(began); d < 500*time.Millisecond || d > 10*time.Second {
		t.Errorf("gave up after %s with a 1s bound", d)
	}
}

// TestMainTakesNoCredentialArguments: a stage binary's only argument is
// -config; a seed or password on the command line (visible in ps) is an
// error, not an alternative.
func TestMainTakesNoCredentialArguments(t *testing.T) {
	for _, args := range [][]string{
		{"-nkey", "SUAFAKESEED"},
		{"-nats-url", "nats://bob:pw@h:4222"},
		{"-password", "pw"},
	} {
		var stderr strings.Builder
		ran := false
		code := Main("crowsnest-test", &testRoot{Common: NewCommon()}, args, &stderr, func(context.Context, *Env) error {
			ran = true
			return nil
		})
		if code != 2 || ran {
			t.Errorf("%v: exit %d (ran %v), want 2 and no run", args, code, ran)
		}
		if strings.Contains(stderr.String(), args[1]) {
			t.Errorf("%v: the value was echoed: %s", args, stderr.String())
		}
	}
}

// A stage starting while its server is away (a cluster node restarting, a
// server not up yet) waits it out instead of exiting on the first
// timed-out topology call; with no time to retry it fails as before.
func TestPrepareTopologyWaitsOutAnAbsentServer(t *testing.T) {
	cfg := natstest.Config(t)
	srv := natstest.StartWith(t, cfg)
	cfg.Port = srv.NATS().Addr().(*net.TCPAddr).Port
	ncfg := natsconn.NewDefaultConfig()
	ncfg.URL = srv.ClientURL()
	ncfg.Reconnect.Wait = 100 * time.Millisecond
	// No deadline: JetStream calls then take their own timeout, as in a
	// stage (a context deadline would replace it); limit bounds the wait.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	nc, _, err := natsconn.Connect(ctx, ncfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	// A short API timeout keeps each failed attempt short.
	js, err := jetstream.New(nc, jetstream.WithDefaultTimeout(500*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	srv.Shutdown()
	logger := slog.New(slog.DiscardHandler)

	if err := prepareTopology(ctx, nc, js, true, topology.NewDefaultConfig(), nil, logger, 0, 0); err == nil || !transientJetStream(err) {
		t.Fatalf("without retries, with the server away: %v, want a transient error", err)
	}

	back := natstest.RestartAfter(t, cfg, 1500*time.Millisecond)
	start := time.Now()
	err = prepareTopology(ctx, nc, js, true, topology.NewDefaultConfig(), nil, logger, 30*time.Second, 0)
	back()
	if err != nil {
		t.Fatalf("prepare topology across a server restart: %v", err)
	}
	if _, err := js.Stream(ctx, topology.EventsStream); err != nil {
		t.Fatalf("events stream after prepare: %v", err)
	}
	t.Logf("topology prepared %s after the first attempt, across the server's absence", time.Since(start).Round(time.Millisecond))
}

func TestTransientJetStream(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{fmt.Errorf("look up stream X: %w", context.DeadlineExceeded), true},
		{errors.Join(errors.New("other"), fmt.Errorf("x: %w", nats.ErrTimeout)), true},
		{fmt.Errorf("x: %w", jetstream.ErrJetStreamNotEnabled), true},
		{&jetstream.APIError{Code: 503, ErrorCode: 10008, Description: "JetStream system temporarily unavailable"}, true},
		{fmt.Errorf("ensure topology: %w (refused)", ErrNoManagementRights), false},
		{fmt.Errorf("x: %w: %w", context.DeadlineExceeded, ErrInboxRefused), false},
		{&jetstream.APIError{Code: 400, ErrorCode: 10058, Description: "stream name already in use"}, false},
		{errors.New("stream CROWSNEST_EVENTS: subjects differ"), false},
	} {
		if got := transientJetStream(tc.err); got != tc.want {
			t.Errorf("transientJetStream(%v) = %t, want %t", tc.err, got, tc.want)
		}
	}
}

// freeAddr is a loopback address nothing listens on now.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// readyz returns the status and body of GET /readyz at addr.
func readyz(t *testing.T, addr string) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/readyz")
	if err != nil {
		t.Errorf("GET /readyz: %v", err)
		return 0, ""
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}
