package embedded

import (
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"

	"github.com/crowsnest-siem/crowsnest/bus/internal/fielderr"
	"github.com/crowsnest-siem/crowsnest/bus/topology"
)

// ConfigKey is the key this section sits under in crowsnest's config file.
// Validate reports paths relative to Config; Start puts ConfigKey in front.
const ConfigKey = "embedded"

// Config is the embedded server's settings.
type Config struct {
	// DataDir holds JetStream's files (under DataDir/jetstream). Keep it on
	// a persistent disk: streams and unacked messages survive restarts there.
	DataDir string `yaml:"data_dir"`
	// Host is the address to listen on. 127.0.0.1 keeps the bus private to
	// this machine; use 0.0.0.0 to let collectors on other hosts publish.
	Host string `yaml:"host"`
	// Port to listen on; -1 picks a free one (see Server.ClientURL), 4222 is
	// the NATS default.
	Port int `yaml:"port"`
	// MaxMemory caps JetStream memory storage; 0 lets the server take 75% of RAM.
	MaxMemory topology.ByteSize `yaml:"max_memory"`
	// MaxStore caps JetStream file storage; 0 lets the server take 75% of the
	// free disk under DataDir. It must cover the sum of the topology's
	// max_bytes, which JetStream reserves when streams are created.
	MaxStore topology.ByteSize `yaml:"max_store"`
	// SyncInterval is how often JetStream fsyncs its files; 0 keeps the
	// server's default (2m). Shorter loses less on a power cut and costs
	// throughput. (A process crash loses nothing either way: writes are in
	// the OS page cache.)
	SyncInterval time.Duration `yaml:"sync_interval"`
	// TLS makes the server accept TLS clients only; with verify, only
	// clients holding a certificate its ca_file signed (mutual TLS).
	TLS TLSConfig `yaml:"tls"`
	// NKeyUsers, when set, makes the server require nkey authentication and
	// apply each user's permissions (bus/authz.NkeyUsers builds them). Not
	// read from the config file: the user list comes from bus/authz, whose
	// seeds live in files.
	NKeyUsers []*server.NkeyUser `yaml:"-"`
}

// TLSConfig is the server side of TLS. Setting cert_file and key_file turns
// TLS on; the server then refuses plain-text clients.
type TLSConfig struct {
	// CertFile and KeyFile are the server's certificate (its SANs must name
	// the host clients dial, e.g. IP 127.0.0.1) and private key.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// CAFile verifies client certificates; required with verify.
	CAFile string `yaml:"ca_file"`
	// Verify requires every client to present a certificate CAFile signed
	// (mutual TLS), before any credential is looked at.
	Verify bool `yaml:"verify"`
	// Timeout bounds a client's TLS handshake; 0 keeps the server default (2s).
	Timeout time.Duration `yaml:"timeout"`
}

// Enabled reports whether TLS is configured.
func (t TLSConfig) Enabled() bool { return t.CertFile != "" || t.KeyFile != "" }

func (t TLSConfig) validate(add func(field, format string, args ...any)) {
	if !t.Enabled() {
		if t.CAFile != "" || t.Verify {
			add("tls", "ca_file and verify need cert_file and key_file: set the server certificate to turn TLS on")
		}
		return
	}
	if t.CertFile == "" || t.KeyFile == "" {
		add("tls", "cert_file and key_file go together")
	}
	if t.Verify && t.CAFile == "" {
		add("tls.ca_file", "must be set with verify: it is the CA whose client certificates are accepted")
	}
	if t.Timeout < 0 {
		add("tls.timeout", "must be >= 0 (0 keeps the server default), got %s", t.Timeout)
	}
}

// NewDefaultConfig returns a server private to this machine on a random port,
// with data under .data/nats relative to the working directory.
func NewDefaultConfig() Config {
	return Config{
		DataDir: ".data/nats",
		Host:    "127.0.0.1",
		Port:    -1,
	}
}

// Validate reports every invalid field, joined, each naming its key path
// relative to Config ("data_dir: must be set ...").
func (c Config) Validate() error {
	var errs []error
	add := func(field, format string, args ...any) {
		errs = append(errs, fielderr.New(field, format, args...))
	}
	if c.DataDir == "" {
		add("data_dir", "must be set: JetStream keeps its streams there")
	}
	if c.Host == "" {
		add("host", "must be set (127.0.0.1 for this machine only, 0.0.0.0 for all interfaces)")
	}
	if c.Port < -1 || c.Port > 65535 {
		add("port", "must be -1 (any free port) or 0..65535, got %d", c.Port)
	}
	if c.MaxMemory < 0 {
		add("max_memory", "must be >= 0 (0 lets the server choose), got %d", int64(c.MaxMemory))
	}
	if c.MaxStore < 0 {
		add("max_store", "must be >= 0 (0 lets the server choose), got %d", int64(c.MaxStore))
	}
	if c.SyncInterval < 0 {
		add("sync_interval", "must be >= 0 (0 keeps the server default), got %s", c.SyncInterval)
	}
	c.TLS.validate(add)
	for i, u := range c.NKeyUsers {
		if u == nil || !nkeys.IsValidPublicUserKey(u.Nkey) {
			add(fmt.Sprintf("nkey_users[%d]", i), "not a public user nkey (U...)")
		}
	}
	return errors.Join(errs...)
}
