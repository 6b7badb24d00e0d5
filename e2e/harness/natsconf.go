package harness

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// StartNATSSync is StartNATS with JetStream's sync_interval set in a
// configuration file (nats-server has no flag for it): "always" fsyncs
// every write, a duration ("2m", the server's default) fsyncs that often.
// An empty sync is StartNATS.
func (e *Env) StartNATSSync(name, sync string) *NATS {
	e.t.Helper()
	if sync == "" {
		return e.StartNATS(name)
	}
	ports := e.Ports(2)
	conf := fmt.Sprintf(`server_name: %q
listen: "127.0.0.1:%d"
http: "127.0.0.1:%d"
jetstream {
  store_dir: %q
  sync_interval: %s
}
`, name, ports[0], ports[1], e.Path(name, "store"), strconv.Quote(sync))
	spec := Spec{
		Name:     name,
		Path:     e.Bin.NATSServer,
		Args:     []string{"-c", e.WriteFile(name+"/nats-server.conf", conf)},
		Dir:      e.Path(name),
		ReadyURL: fmt.Sprintf("http://127.0.0.1:%d/healthz?js-enabled-only=true", ports[1]),
	}
	n := &NATS{URL: fmt.Sprintf("nats://127.0.0.1:%d", ports[0]), spec: spec, env: e}
	n.Proc = e.Start(spec)
	return n
}

// JetStreamSync reads the server's JetStream sync settings from its
// monitoring endpoint (/varz): whether every write is fsynced, and the
// background fsync interval otherwise (0: the server did not report one).
func (n *NATS) JetStreamSync(ctx context.Context) (always bool, interval time.Duration, err error) {
	u, err := url.Parse(n.spec.ReadyURL)
	if err != nil {
		return false, 0, fmt.Errorf("nats monitor url: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+u.Host+"/varz", nil)
	if err != nil {
		return false, 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false, 0, fmt.Errorf("nats /varz: %w", err)
	}
	defer resp.Body.Close()
	var v struct {
		JetStream struct {
			Config struct {
				SyncInterval time.Duration `json:"sync_interval"`
				SyncAlways   bool          `json:"sync_always"`
			} `json:"config"`
		} `json:"jetstream"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		return false, 0, fmt.Errorf("nats /varz: %w", err)
	}
	return v.JetStream.Config.SyncAlways, v.JetStream.Config.SyncInterval, nil
}
