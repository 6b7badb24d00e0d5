package natsconn

import (
	"errors"
	"net/url"
	"strings"
	"time"

	"github.com/crowsnest-siem/crowsnest/bus/internal/fielderr"
	"github.com/crowsnest-siem/crowsnest/bus/topology"
)

// ConfigKey is the key this section sits under in crowsnest's config file.
// Validate reports paths relative to Config; Connect puts ConfigKey in front.
const ConfigKey = "nats"

// Config is how to reach NATS.
type Config struct {
	// URL of the server, or a comma-separated list of a cluster's servers:
	// nats://host:4222, tls://host:4222. user:password@ in a URL is accepted
	// and redacted in logs; prefer creds_file.
	URL string `yaml:"url"`
	// Name identifies this client in the server's monitoring (connz).
	Name string `yaml:"name"`
	// CredsFile is a NATS credentials file (JWT and nkey seed), the usual
	// authentication with an operator/account setup. Excludes nkey_file.
	CredsFile string `yaml:"creds_file"`
	// NKeyFile is a file holding an nkey seed (SU...). Excludes creds_file.
	NKeyFile string `yaml:"nkey_file"`
	// InboxPrefix replaces _INBOX as the prefix of this client's reply
	// subjects (JetStream acks, pull batches, API replies). With per-identity
	// permissions (bus/authz) it must be the identity's _INBOX_<name>, the
	// only inbox it may subscribe to. Empty keeps _INBOX.
	InboxPrefix string `yaml:"inbox_prefix"`
	// TLS is client TLS; any field set turns TLS on.
	TLS TLSConfig `yaml:"tls"`
	// ConnectTimeout bounds one connection attempt.
	ConnectTimeout time.Duration `yaml:"connect_timeout"`
	// PingInterval is how often the client checks the server is alive; a
	// dead server is noticed after about ping_interval * max_pings_outstanding.
	PingInterval time.Duration `yaml:"ping_interval"`
	// MaxPingsOutstanding is how many unanswered pings mean the server is gone.
	MaxPingsOutstanding int `yaml:"max_pings_outstanding"`
	// Reconnect is what happens when the connection drops.
	Reconnect ReconnectConfig `yaml:"reconnect"`
}

// TLSConfig is client TLS.
type TLSConfig struct {
	// CAFile verifies the server's certificate; empty uses the system roots.
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are the client certificate for mutual TLS; both or
	// neither.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// InsecureSkipVerify accepts any server certificate. For a lab only: it
	// lets anyone on the path read and forge the security events.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
}

// Enabled reports whether any TLS setting is made.
func (t TLSConfig) Enabled() bool {
	return t.CAFile != "" || t.CertFile != "" || t.KeyFile != "" || t.InsecureSkipVerify
}

// ReconnectConfig is the behaviour after a lost connection.
type ReconnectConfig struct {
	// MaxAttempts before giving up and closing the connection; -1 (default)
	// never gives up: a collector must outlive a NATS restart.
	MaxAttempts int `yaml:"max_attempts"`
	// Wait between attempts to the same server.
	Wait time.Duration `yaml:"wait"`
	// Jitter added to Wait (JitterTLS for TLS connections), so a fleet of
	// collectors does not reconnect in lock-step.
	Jitter    time.Duration `yaml:"jitter"`
	JitterTLS time.Duration `yaml:"jitter_tls"`
	// BufferSize is how many bytes of publishes are held while disconnected;
	// past it publishing fails until reconnected.
	BufferSize topology.ByteSize `yaml:"buffer_size"`
}

// NewDefaultConfig connects to a local server and reconnects forever.
func NewDefaultConfig() Config {
	return Config{
		URL:                 "nats://127.0.0.1:4222",
		Name:                "crowsnest",
		ConnectTimeout:      5 * time.Second,
		PingInterval:        20 * time.Second,
		MaxPingsOutstanding: 3,
		Reconnect: ReconnectConfig{
			MaxAttempts: -1,
			Wait:        2 * time.Second,
			Jitter:      100 * time.Millisecond,
			JitterTLS:   time.Second,
			BufferSize:  8 * topology.MiB,
		},
	}
}

// Validate reports every invalid field, joined, each naming its key path
// relative to Config. It checks form only; files are opened by Connect.
func (c Config) Validate() error {
	var errs []error
	add := func(path, format string, args ...any) {
		errs = append(errs, fielderr.New(path, format, args...))
	}
	if strings.TrimSpace(c.URL) == "" {
		add("url", "must be set, e.g. nats://127.0.0.1:4222")
	} else {
		for _, u := range strings.Split(c.URL, ",") {
			if err := checkURL(strings.TrimSpace(u)); err != nil {
				add("url", "%v", err)
			}
		}
	}
	if c.CredsFile != "" && c.NKeyFile != "" {
		add("nkey_file", "set creds_file or nkey_file, not both")
	}
	if c.InboxPrefix != "" && (strings.ContainsAny(c.InboxPrefix, "*> \t\r\n") || strings.HasPrefix(c.InboxPrefix, ".") ||
		strings.HasSuffix(c.InboxPrefix, ".") || strings.Contains(c.InboxPrefix, "..")) {
		add("inbox_prefix", "%q is not a subject prefix: no wildcards, whitespace or empty tokens (e.g. _INBOX_collector-node1)", c.InboxPrefix)
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		add("tls", "cert_file and key_file go together: set both for mutual TLS, or neither")
	}
	if c.ConnectTimeout <= 0 {
		add("connect_timeout", "must be > 0 (e.g. 5s), got %s", c.ConnectTimeout)
	}
	if c.PingInterval <= 0 {
		add("ping_interval", "must be > 0 (e.g. 20s), got %s", c.PingInterval)
	}
	if c.MaxPingsOutstanding < 1 {
		add("max_pings_outstanding", "must be >= 1, got %d", c.MaxPingsOutstanding)
	}
	r := c.Reconnect
	if r.MaxAttempts < -1 {
		add("reconnect.max_attempts", "must be -1 (forever) or >= 0, got %d", r.MaxAttempts)
	}
	if r.Wait <= 0 {
		add("reconnect.wait", "must be > 0 (e.g. 2s), got %s", r.Wait)
	}
	if r.Jitter < 0 {
		add("reconnect.jitter", "must be >= 0, got %s", r.Jitter)
	}
	if r.JitterTLS < 0 {
		add("reconnect.jitter_tls", "must be >= 0, got %s", r.JitterTLS)
	}
	if r.BufferSize <= 0 || r.BufferSize > 1<<31-1 {
		add("reconnect.buffer_size", "must be > 0 and < 2GiB (e.g. 8MiB), got %s", r.BufferSize)
	}
	return errors.Join(errs...)
}

func checkURL(raw string) error {
	if raw == "" {
		return errors.New("empty entry in the server list")
	}
	s := raw
	if !strings.Contains(s, "://") {
		s = "nats://" + s // nats.go accepts host:port alone
	}
	u, err := url.Parse(s)
	if err != nil {
		// url's error repeats the URL, which may hold a password.
		return errors.New("cannot parse " + redactURL(raw))
	}
	switch u.Scheme {
	case "nats", "tls", "ws", "wss":
	default:
		return errors.New("scheme " + u.Scheme + " in " + redactURL(raw) + ": want nats, tls, ws or wss")
	}
	if u.Hostname() == "" {
		return errors.New("no host in " + redactURL(raw))
	}
	return nil
}

// redactURL hides the password (or token) in each URL of a server list.
func redactURL(list string) string {
	parts := strings.Split(list, ",")
	for i, p := range parts {
		p = strings.TrimSpace(p)
		s := p
		if !strings.Contains(s, "://") {
			s = "nats://" + s
		}
		u, err := url.Parse(s)
		if err != nil {
			if strings.Contains(p, "@") {
				parts[i] = "[unparseable URL with credentials]"
			}
			continue
		}
		if u.User != nil {
			parts[i] = u.Scheme + "://" + "[REDACTED]@" + u.Host + u.Path
		}
	}
	return strings.Join(parts, ",")
}
