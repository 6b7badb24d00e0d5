package natsconn_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"

	"github.com/crowsnest-siem/crowsnest/bus/embedded/natstest"
	"github.com/crowsnest-siem/crowsnest/bus/natsconn"
)

func TestOnPermissionViolation(t *testing.T) {
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := kp.PublicKey()
	seed, _ := kp.Seed()
	seedFile := filepath.Join(t.TempDir(), "u.nk")
	if err := os.WriteFile(seedFile, seed, 0o600); err != nil {
		t.Fatal(err)
	}
	ecfg := natstest.Config(t)
	ecfg.NKeyUsers = []*server.NkeyUser{{Nkey: pub, Permissions: &server.Permissions{
		Publish: &server.SubjectPermission{Allow: []string{"ok.>"}},
	}}}
	srv := natstest.StartWith(t, ecfg)
	cfg := natsconn.NewDefaultConfig()
	cfg.URL, cfg.NKeyFile = srv.ClientURL(), seedFile
	logger, logs := newLogger()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	nc, _, err := natsconn.Connect(ctx, cfg, logger)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()

	got := make(chan error, 4)
	stop := natsconn.OnPermissionViolation(nc, func(err error) { got <- err })
	if err := nc.Publish("ok.fine", nil); err != nil {
		t.Fatal(err)
	}
	if err := nc.Publish("denied.one", nil); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-got:
		if !strings.Contains(err.Error(), `"denied.one"`) {
			t.Errorf("violation %v does not name denied.one", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no violation reported")
	}
	stop()
	if err := nc.Publish("denied.two", nil); err != nil {
		t.Fatal(err)
	}
	logs.waitFor(t, "denied.two") // still logged by Connect's handler
	select {
	case err := <-got:
		t.Fatalf("reported after stop: %v", err)
	default:
	}
	if n := strings.Count(logs.String(), "ok.fine"); n != 0 {
		t.Errorf("an allowed publish was reported: %s", logs.String())
	}
}
