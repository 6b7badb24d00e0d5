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

	"github.com/crowsnest-siem/crowsnest/bus/embedded"
	"github.com/crowsnest-siem/crowsnest/bus/embedded/natstest"
	"github.com/crowsnest-siem/crowsnest/bus/natsconn"
)

func writeSeed(t *testing.T) (file, seed, pub string) {
	t.Helper()
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	s, _ := kp.Seed()
	pub, _ = kp.PublicKey()
	file = filepath.Join(t.TempDir(), "id.nk")
	if err := os.WriteFile(file, s, 0o600); err != nil {
		t.Fatal(err)
	}
	return file, string(s), pub
}

// TestSeedsNeverLogged: across a connection's life (connect, server
// restart, reconnect, close) at debug level, and in the errors of a
// refused or unusable seed, the seed's text never appears.
func TestSeedsNeverLogged(t *testing.T) {
	good, goodSeed, pub := writeSeed(t)
	unknown, unknownSeed, _ := writeSeed(t)
	ecfg := natstest.Config(t)
	ecfg.Port = freePort(t)
	ecfg.NKeyUsers = []*server.NkeyUser{{Nkey: pub}}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	srv := natstest.StartWith(t, ecfg)

	logger, logs := newLogger()
	var errs []string
	cfg := natsconn.NewDefaultConfig()
	cfg.URL, cfg.NKeyFile = srv.ClientURL(), good
	cfg.Reconnect.Wait = 100 * time.Millisecond
	nc, _, err := natsconn.Connect(ctx, cfg, logger)
	if err != nil {
		t.Fatal(err)
	}
	srv.Shutdown()
	logs.waitFor(t, "disconnected from nats")
	srv2, err := embedded.Start(ctx, ecfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer srv2.Shutdown()
	logs.waitFor(t, "reconnected to nats")
	nc.Close()

	cfg.NKeyFile = unknown
	if _, _, err := natsconn.Connect(ctx, cfg, logger); err == nil {
		t.Fatal("a seed the server does not know connected")
	} else {
		errs = append(errs, err.Error())
	}
	// A file holding a secret that is not a usable seed: the error names
	// the file, never its content.
	junk := filepath.Join(t.TempDir(), "junk.nk")
	junkSecret := "SUAJUNK" + strings.Repeat("X", 50)
	if err := os.WriteFile(junk, []byte(junkSecret), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg.NKeyFile = junk
	if _, _, err := natsconn.Connect(ctx, cfg, logger); err == nil {
		t.Fatal("junk seed connected")
	} else {
		errs = append(errs, err.Error())
	}

	all := logs.String() + strings.Join(errs, "\n")
	for name, secret := range map[string]string{"seed": goodSeed, "unknown seed": unknownSeed, "junk": junkSecret} {
		if strings.Contains(all, secret) || strings.Contains(all, secret[:20]) {
			t.Errorf("the %s appears in logs or errors:\n%s", name, all)
		}
	}
}
