package chartcheck

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// TestSetupJobAgainstTheRenderedServer runs the chart's auth path for real:
// the README's crowsnest nats-auth output is included by the rendered
// nats.conf of a nats-server started from it; before setup the processor's
// rendered config fails to verify the topology; the nats-setup Job's
// rendered config (its admin seed where the Secret would be mounted) creates
// it; then the processor's identity verifies it, and the Job's command run
// with another identity's config is refused.
func TestSetupJobAgainstTheRenderedServer(t *testing.T) {
	bin := buildCLI(t)
	values := authValues(`seeds: {sinks: {elasticsearch: nats-sink-elasticsearch}}`) + `
sinks: {elasticsearch: {enabled: true}}
`
	vals := strings.Replace(values, "nats:\n", "nats:\n  replicas: 1\n", 1)
	r := decode(t, render(t, vals))
	dir := t.TempDir()
	natsAuth(t, bin, filepath.Join(dir, "auth"))

	if !strings.Contains(r.natsConf, `include "auth/auth.conf"`) {
		t.Fatalf("nats.conf without the authorization block:\n%s", r.natsConf)
	}
	conf := filepath.Join(dir, "nats.conf")
	if err := os.WriteFile(conf, []byte(r.natsConf), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("POD_NAME", "cn-crowsnest-nats-0")
	opts, err := server.ProcessConfigFile(conf)
	if err != nil {
		t.Fatalf("nats.conf: %v", err)
	}
	// Where the test can run it: a free port, a temporary store, no
	// monitoring port or pid file.
	opts.Host, opts.Port, opts.HTTPPort, opts.PidFile = "127.0.0.1", -1, 0, ""
	opts.StoreDir = t.TempDir()
	srv, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	t.Cleanup(srv.Shutdown)
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}

	// localConfig rewrites a rendered crowsnest.yaml for this machine: the
	// server's URL and the seeds where nats-auth wrote them.
	localConfig := func(cm string) string {
		y, ok := r.configs[cm]
		if !ok {
			t.Fatalf("ConfigMap %s not rendered", cm)
		}
		y = strings.Replace(y, "url: nats://cn-crowsnest-nats.crowsnest.svc:4222", "url: "+srv.ClientURL(), 1)
		y = strings.ReplaceAll(y, "/var/run/secrets/crowsnest/nats/", filepath.Join(dir, "auth", "seeds")+"/")
		path := filepath.Join(dir, cm+".yaml")
		if err := os.WriteFile(path, []byte(y), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	run := func(args ...string) (string, error) {
		cmd := exec.Command(bin, args...)
		cmd.Env = cleanEnv()
		out, err := cmd.CombinedOutput()
		return string(out), err
	}

	processor := localConfig("cn-crowsnest-processor")
	if out, err := run("nats-setup", "--check", "--config", processor); err == nil || !strings.Contains(out, "nats-setup") {
		t.Fatalf("processor's check before setup: %v\n%s\nwant a failure naming the setup command", err, out)
	}
	if out, err := run("nats-setup", "--config", processor); err == nil || !strings.Contains(out, "admin") {
		t.Fatalf("nats-setup as the processor: %v\n%s\nwant a refusal asking for the admin identity", err, out)
	}
	job := localConfig("cn-crowsnest-nats-setup")
	out, err := run("nats-setup", "--config", job)
	if err != nil {
		t.Fatalf("the Job's nats-setup: %v\n%s", err, out)
	}
	for _, want := range []string{"CROWSNEST_EVENTS", "processor-p0..p7", "clickhouse on CROWSNEST_EVENTS", "elasticsearch on CROWSNEST_EVENTS"} {
		if !strings.Contains(out, want) {
			t.Errorf("the Job's nats-setup output does not list %s:\n%s", want, out)
		}
	}
	if out, err := run("nats-setup", "--check", "--config", processor); err != nil {
		t.Fatalf("processor's check after setup: %v\n%s", err, out)
	}
}
