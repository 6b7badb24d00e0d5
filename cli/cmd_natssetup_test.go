package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/crowsnest-siem/crowsnest/bus/authz"
	"github.com/crowsnest-siem/crowsnest/bus/embedded/natstest"
	"github.com/crowsnest-siem/crowsnest/bus/natsconn"
	"github.com/crowsnest-siem/crowsnest/bus/topology"
)

// TestNATSSetup: the production path. Stage identities cannot create the
// topology and are told to run nats-setup; nats-setup as the admin creates
// streams, buckets and consumers; afterwards --check passes even as a stage
// identity. No seed is ever printed.
func TestNATSSetup(t *testing.T) {
	seeds := t.TempDir()
	users, err := authz.Users(authz.Config{Sinks: []string{"file"}}, seeds)
	if err != nil {
		t.Fatal(err)
	}
	ecfg := natstest.Config(t)
	ecfg.NKeyUsers = authz.NkeyUsers(users)
	srv := natstest.StartWith(t, ecfg)

	dir := t.TempDir()
	configAs := func(id authz.Identity) string {
		path := filepath.Join(dir, id.Name()+".yaml")
		conf := fmt.Sprintf(`nats:
  url: %s
  nkey_file: %s
  inbox_prefix: %s
topology:
  partitions: 2
sinks:
  file: {enabled: true, runner: {streams: [events]}}
`, srv.ClientURL(), authz.SeedFile(seeds, id), id.InboxPrefix())
		if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	admin := authz.Identity{Role: authz.RoleAdmin}
	processor := authz.Identity{Role: authz.RoleProcessor}
	var outputs strings.Builder
	run := func(args ...string) (string, string, int) {
		out, errOut, code := execute(t, "", args...)
		outputs.WriteString(out + errOut)
		return out, errOut, code
	}

	// Before setup: --check names what is missing and the command.
	_, errOut, code := run("nats-setup", "--check", "--config", configAs(processor))
	if code != 1 || !strings.Contains(errOut, "CROWSNEST_EVENTS") || !strings.Contains(errOut, "crowsnest nats-setup") {
		t.Fatalf("check before setup: exit %d, %s", code, errOut)
	}
	// A stage identity cannot set up, and is told which identity can, fast.
	start := time.Now()
	_, errOut, code = run("nats-setup", "--config", configAs(processor))
	if code != 1 || !strings.Contains(errOut, "needs the admin identity") || !strings.Contains(errOut, "$JS.API.") {
		t.Fatalf("setup as the processor: exit %d, %s", code, errOut)
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Errorf("refusal took %s", d)
	}

	// The admin sets up.
	out, errOut, code := run("nats-setup", "--config", configAs(admin))
	if code != 0 {
		t.Fatalf("setup as admin: exit %d\n%s%s", code, out, errOut)
	}
	for _, want := range []string{"stream CROWSNEST_RAW_K8S_AUDIT\tsubjects crowsnest.raw.k8s_audit.*.*", "stream CROWSNEST_DLQ", "stream KV_crowsnest-state",
		"bucket crowsnest-processors", "processor-p0..p1", "sinks: file on CROWSNEST_EVENTS\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("setup output lacks %q:\n%s", want, out)
		}
	}
	// Idempotent.
	if _, errOut, code := run("nats-setup", "--config", configAs(admin)); code != 0 {
		t.Fatalf("second setup: exit %d, %s", code, errOut)
	}
	out, errOut, code = run("nats-setup", "--check", "--config", configAs(processor))
	if code != 0 || !strings.Contains(out, "topology ok") {
		t.Fatalf("check after setup as the processor: exit %d, %s%s", code, out, errOut)
	}

	// What it made: the partition consumers, the sink's consumers, the
	// membership bucket.
	ncfg := natsconn.NewDefaultConfig()
	ncfg.URL, ncfg.NKeyFile, ncfg.InboxPrefix = srv.ClientURL(), authz.SeedFile(seeds, admin), admin.InboxPrefix()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	nc, js, err := natsconn.Connect(ctx, ncfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	for _, c := range [][2]string{
		{"CROWSNEST_RAW_FALCO", "processor-p1"}, {topology.EventsStream, "sink-file"},
	} {
		if _, err := js.Consumer(ctx, c[0], c[1]); err != nil {
			t.Errorf("consumer %s on %s: %v", c[1], c[0], err)
		}
	}
	if _, err := js.Consumer(ctx, topology.AlertsStream, "sink-file"); err == nil {
		t.Error("setup made an alerts consumer for a sink that reads only events")
	}
	if _, err := js.Consumer(ctx, topology.EventsStream, "sink-terminal"); err == nil {
		t.Error("setup made a consumer for the terminal sink, which deployed sinks do not run")
	}
	if _, err := js.KeyValue(ctx, topology.ProcessorsBucket); err != nil {
		t.Errorf("membership bucket: %v", err)
	}

	for _, u := range users {
		seed, err := os.ReadFile(authz.SeedFile(seeds, u.Identity))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(outputs.String(), strings.TrimSpace(string(seed))) {
			t.Fatalf("the %s seed was printed", u.Name())
		}
	}
}
