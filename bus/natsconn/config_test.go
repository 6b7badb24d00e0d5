package natsconn

import (
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/crowsnest-siem/crowsnest/bus/topology"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*Config)
		want   []string
	}{
		{"defaults", func(*Config) {}, nil},
		{"cluster list", func(c *Config) { c.URL = "nats://a:4222, tls://b:4222,c:4222" }, nil},
		{"websocket", func(c *Config) { c.URL = "wss://nats.example.com:443" }, nil},
		{"mutual tls", func(c *Config) { c.TLS = TLSConfig{CAFile: "ca.pem", CertFile: "c.pem", KeyFile: "k.pem"} }, nil},
		{"no url", func(c *Config) { c.URL = " " }, []string{"url: must be set"}},
		{"bad scheme", func(c *Config) { c.URL = "http://x:4222" }, []string{"url: scheme http"}},
		{"empty list entry", func(c *Config) { c.URL = "nats://a:4222,," }, []string{"url: empty entry"}},
		{"bad url hides password", func(c *Config) { c.URL = "nats://bob:hunter2@[::1" }, []string{"url: cannot parse"}},
		{"creds and nkey", func(c *Config) { c.CredsFile = "a"; c.NKeyFile = "b" }, []string{"nkey_file: set creds_file or nkey_file, not both"}},
		{"inbox prefix wildcard", func(c *Config) { c.InboxPrefix = "_INBOX_a.>" }, []string{"inbox_prefix: \"_INBOX_a.>\" is not a subject prefix"}},
		{"inbox prefix trailing dot", func(c *Config) { c.InboxPrefix = "_INBOX_a." }, []string{"inbox_prefix:"}},
		{"cert without key", func(c *Config) { c.TLS.CertFile = "c.pem" }, []string{"tls: cert_file and key_file go together"}},
		{"timeouts", func(c *Config) { c.ConnectTimeout = 0; c.PingInterval = -1; c.MaxPingsOutstanding = 0 },
			[]string{"connect_timeout: must be > 0", "ping_interval: must be > 0", "max_pings_outstanding: must be >= 1"}},
		{"reconnect", func(c *Config) {
			c.Reconnect = ReconnectConfig{MaxAttempts: -2, Wait: 0, Jitter: -1, JitterTLS: -1, BufferSize: 0}
		}, []string{"reconnect.max_attempts", "reconnect.wait", "reconnect.jitter:", "reconnect.jitter_tls", "reconnect.buffer_size"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := NewDefaultConfig()
			tt.modify(&cfg)
			err := cfg.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Validate() = %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate() = %q, want %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("validation error leaks the URL's password: %v", err)
			}
		})
	}
}

func TestRedactURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"nats://127.0.0.1:4222", "nats://127.0.0.1:4222"},
		{"nats://bob:hunter2@h:4222", "nats://[REDACTED]@h:4222"},
		{"nats://tok3n@h:4222,tls://a:b@h2:4222", "nats://[REDACTED]@h:4222,tls://[REDACTED]@h2:4222"},
		{"bob:pw@h:4222", "nats://[REDACTED]@h:4222"},
		{"nats://bob:hunter2@[::1", "[unparseable URL with credentials]"},
	}
	for _, tt := range tests {
		if got := redactURL(tt.in); got != tt.want {
			t.Errorf("redactURL(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestConfigYAML(t *testing.T) {
	const doc = `
url: tls://nats.example.com:4222
name: collector-node-1
creds_file: /etc/crowsnest/collector.creds
tls: {ca_file: /etc/ssl/ca.pem}
connect_timeout: 3s
reconnect: {max_attempts: -1, wait: 1s, buffer_size: 16MiB}
`
	cfg := NewDefaultConfig()
	dec := yaml.NewDecoder(strings.NewReader(doc))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if cfg.Reconnect.BufferSize != 16*topology.MiB || cfg.ConnectTimeout != 3*time.Second || cfg.PingInterval != 20*time.Second || !cfg.TLS.Enabled() {
		t.Fatalf("decoded %+v", cfg)
	}
	dec = yaml.NewDecoder(strings.NewReader("tls: {insecure_skip_verfy: true}\n"))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err == nil {
		t.Fatal("a typo in a key must fail")
	}
}
