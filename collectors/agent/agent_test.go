package agent

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/crowsnest-siem/crowsnest/collectors/internal/bustest"
	"github.com/crowsnest-siem/crowsnest/collectors/spool"
	"github.com/crowsnest-siem/crowsnest/daemon/config"
)

const everyBlock = `
publish: {collector_id: node-1, node: node-1}
spool: {enabled: true, dir: /var/lib/crowsnest/spool, max_bytes: 64MiB, fsync: always, full_policy: drop, gap_interval: 10s}
redact:
  enabled: true
  paths: [{source: k8s_audit, path: requestObject.spec.password}]
replay: {enabled: false}
k8s_audit_file: {enabled: false, paths: [/var/log/kubernetes/audit/audit.log]}
k8s_audit_webhook:
  enabled: true
  listen: 0.0.0.0:9443
  tls: {cert_file: /tls/tls.crt, key_file: /tls/tls.key, client_ca_file: /tls/ca.crt}
falco_http: {enabled: true, listen: "127.0.0.1:2801", allow_insecure_loopback: true}
procwatch: {enabled: true, poll_interval: 250ms, files: [/app/config]}
docker: {enabled: true, socket: /var/run/docker.sock, types: [container, image]}
auditd: {enabled: true, paths: [/var/log/audit/audit.log], flush_after: 3s}
json_lines:
  enabled: true
  source: tetragon
  id_field: process_exec.process.exec_id
  files: {paths: [/var/run/cilium/tetragon/tetragon.log]}
`

func TestDecodeEveryBlockStrictly(t *testing.T) {
	cfg := NewDefaultConfig()
	if err := config.Decode([]byte(everyBlock), "collectors.yaml", &cfg); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	if !cfg.Procwatch.Enabled || cfg.Procwatch.PollInterval != 250*time.Millisecond || cfg.Auditd.Files.FlushAfter != 3*time.Second ||
		cfg.K8sAuditWebhook.Server.TLS.ClientCAFile != "/tls/ca.crt" || cfg.JSONLines.Source != "tetragon" || cfg.Spool.Fsync != "always" ||
		cfg.Spool.FullPolicy != spool.FullDrop || cfg.Spool.GapInterval != 10*time.Second {
		t.Errorf("decoded config lost values: %+v", cfg)
	}
	typo := strings.Replace(everyBlock, "flush_after", "flush_afterr", 1)
	cfg = NewDefaultConfig()
	if err := config.Decode([]byte(typo), "collectors.yaml", &cfg); err == nil || !strings.Contains(err.Error(), "flush_afterr") {
		t.Errorf("a typo decoded: %v", err)
	}
}

func TestApplySourceFlags(t *testing.T) {
	for _, tc := range []struct {
		webhook, falco string
		wantErr        string
	}{
		{"http://127.0.0.1:9000/k8s", "http://localhost:2801", ""},
		{"http://0.0.0.0:9000", "", "loopback"},
		{"127.0.0.1:9443", "", "cert_file"},
		{"ftp://x:1", "", "scheme"},
	} {
		cfg := NewDefaultConfig()
		cfg.Replay.Enabled = false
		err := cfg.ApplySourceFlags(nil, tc.webhook, tc.falco)
		if err == nil {
			err = cfg.Validate()
		}
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("%s: %v", tc.webhook, err)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("%s: error %v, want one about %s", tc.webhook, err, tc.wantErr)
		}
		if tc.wantErr == "" && (cfg.K8sAuditWebhook.Path != "/k8s" || !cfg.FalcoHTTP.Enabled || cfg.FalcoHTTP.Server.Listen != "localhost:2801") {
			t.Errorf("flags not applied: %+v %+v", cfg.K8sAuditWebhook, cfg.FalcoHTTP)
		}
	}
}

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestRunWebhookAndProcwatch runs the agent with two real sources over a
// real embedded JetStream: an EventList POST is answered after publish and
// procwatch reports on this machine.
func TestRunWebhookAndProcwatch(t *testing.T) {
	b := bustest.Start(t)
	cfg := NewDefaultConfig()
	cfg.Publish = bustest.PublishConfig()
	cfg.Replay.Enabled = false
	addr := freeAddr(t)
	if err := cfg.ApplySourceFlags(nil, "http://"+addr, ""); err != nil {
		t.Fatal(err)
	}
	cfg.Procwatch.Enabled = true
	cfg.Procwatch.Network = false
	a, err := New(b.NC, cfg, Settings{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	body := `{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":[{"auditID":"a-1","stage":"ResponseComplete","verb":"create","objectRef":{"resource":"secrets"},"requestObject":{"kind":"Secret","data":{"k":"c2VjcmV0"}}}]}`
	var resp *http.Response
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, err = http.Post("http://"+addr+"/audit", "application/json", strings.NewReader(body))
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST = %d", resp.StatusCode)
	}
	ms := b.Messages(t, bustest.StreamK8sAudit)
	if len(ms) != 1 || ms[0].ID != "a-1-ResponseComplete" || strings.Contains(string(ms[0].Data), "c2VjcmV0") {
		t.Fatalf("stored %d events (want 1, redacted): %s", len(ms), ms)
	}
	b.WaitMessages(t, bustest.StreamProcwatch, 1, 5*time.Second)
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run = %v", err)
	}
}

// TestGapsAreReportedAtShutdown: gaps a previous run could not report (kept
// in the spool's gaps.json) are published by the agent, at the latest when
// it shuts down, on the collector source.
func TestGapsAreReportedAtShutdown(t *testing.T) {
	b := bustest.Start(t)
	dataDir := t.TempDir()
	spoolDir := filepath.Join(dataDir, "collectors", "spool")
	if err := os.MkdirAll(spoolDir, 0o700); err != nil {
		t.Fatal(err)
	}
	const gaps = `[{"id":"gap-spool_full-1700000000000000000-00112233aabbccdd","source":"docker","reason":"spool_full","records":42,"bytes":8400,"first":"2023-11-14T22:13:20Z","last":"2023-11-14T22:14:20Z"}]`
	if err := os.WriteFile(filepath.Join(spoolDir, "gaps.json"), []byte(gaps), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := NewDefaultConfig()
	cfg.Publish = bustest.PublishConfig()
	cfg.Replay.Enabled = false
	cfg.Procwatch.Enabled = true
	cfg.Procwatch.Network = false
	cfg.Spool.FullPolicy = spool.FullDrop
	cfg.Spool.GapInterval = time.Hour // only the shutdown flush can publish it
	a, err := New(b.NC, cfg, Settings{DataDir: dataDir})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	b.WaitMessages(t, bustest.StreamProcwatch, 1, 5*time.Second)
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run = %v", err)
	}
	ms := b.WaitMessages(t, "CROWSNEST_RAW_COLLECTOR", 1, 5*time.Second)
	if len(ms) != 1 || ms[0].ID != "gap-spool_full-1700000000000000000-00112233aabbccdd" || !strings.Contains(string(ms[0].Data), `"records":42`) {
		t.Fatalf("collector stream: %v %s", bustest.IDs(ms), ms[0].Data)
	}
	if _, err := os.Stat(filepath.Join(spoolDir, "gaps.json")); !os.IsNotExist(err) {
		t.Errorf("gaps.json left after the gap was reported: %v", err)
	}
}

// TestFileTailWaitsForAFullSpool is the issue's "when the spool is full:
// backpressure to the source (stop reading the file)": with NATS away and a
// spool far smaller than the file, the tail stops (the spool never exceeds
// its bound), and once NATS is back every line is stored exactly once.
func TestFileTailWaitsForAFullSpool(t *testing.T) {
	b := bustest.Start(t)
	dir := t.TempDir()
	const n = 2000 // ~600 KB of audit lines for a 64 KiB spool
	var buf strings.Builder
	for i := range n {
		fmt.Fprintf(&buf, `{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"id-%05d","stage":"ResponseComplete","requestURI":"/api/v1/namespaces/shop/pods","verb":"list","user":{"username":"dave@example.com"},"pad":"%s"}`+"\n", i, strings.Repeat("x", 100))
	}
	logPath := filepath.Join(dir, "audit.log")
	if err := os.WriteFile(logPath, []byte(buf.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := NewDefaultConfig()
	cfg.Publish = bustest.PublishConfig()
	cfg.Publish.MaxInFlight = 16
	cfg.Replay.Enabled = false
	cfg.Spool.MaxBytes = 64 * config.KiB
	cfg.Spool.SegmentBytes = 16 * config.KiB
	cfg.Spool.ReplayInterval = 20 * time.Millisecond
	if err := cfg.ApplySourceFlags([]string{logPath}, "", ""); err != nil {
		t.Fatal(err)
	}
	b.Stop()
	for deadline := time.Now().Add(5 * time.Second); b.NC.Status() == nats.CONNECTED && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	a, err := New(b.NC, cfg, Settings{DataDir: filepath.Join(dir, "data"), CloseTimeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	// The spool fills up to its bound and stays there: the tail waits.
	deadline := time.Now().Add(10 * time.Second)
	for a.spool.Bytes() < int64(cfg.Spool.MaxBytes)/2 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	t.Logf("spool holds %d of %d bytes during the outage", a.spool.Bytes(), int64(cfg.Spool.MaxBytes))
	if used := a.spool.Bytes(); used == 0 || used > int64(cfg.Spool.MaxBytes) {
		t.Fatalf("spool holds %d bytes during the outage, want some and at most %d", used, int64(cfg.Spool.MaxBytes))
	}
	if gaps := a.spool.Gaps(); len(gaps) != 0 {
		t.Fatalf("the block policy lost records: %+v", gaps)
	}
	b.Restart(t)
	ms := b.WaitMessages(t, bustest.StreamK8sAudit, n, 60*time.Second)
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run = %v", err)
	}
	ids := map[string]bool{}
	for _, m := range b.Messages(t, bustest.StreamK8sAudit) {
		if ids[m.ID] {
			t.Fatalf("record %s stored twice", m.ID)
		}
		ids[m.ID] = true
	}
	if len(ids) != n || len(ms) < n {
		t.Errorf("%d distinct records stored, want %d", len(ids), n)
	}
}
