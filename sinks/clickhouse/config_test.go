package clickhouse

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/crowsnest-siem/crowsnest/daemon/config"
)

func TestDefaultConfigValid(t *testing.T) {
	if err := NewDefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestConfigValidate(t *testing.T) {
	cases := []struct {
		name, path string
		mut        func(*Config)
	}{
		{"no server", "url", func(c *Config) { c.URL = "" }},
		{"url and addr", "addr", func(c *Config) { c.Addr = []string{"h:9000"} }},
		{"bad scheme", "url", func(c *Config) { c.URL = "ftp://h" }},
		{"credentials in url", "url", func(c *Config) { c.URL = "http://u:p@h:8123" }},
		{"query in url", "url", func(c *Config) { c.URL = "http://h:8123/?database=x" }},
		{"scheme vs protocol", "url", func(c *Config) { c.Protocol = "native" }},
		{"bad addr", "addr[0]", func(c *Config) { c.URL = ""; c.Addr = []string{"nohost"} }},
		{"bad protocol", "protocol", func(c *Config) { c.URL = ""; c.Addr = []string{"h:1"}; c.Protocol = "grpc" }},
		{"database with a dot", "database", func(c *Config) { c.Database = "a.b" }},
		{"database injection", "database", func(c *Config) { c.Database = "x; DROP TABLE y" }},
		{"no user", "username", func(c *Config) { c.Username = "" }},
		{"password twice", "password_file", func(c *Config) { c.Password = "x"; c.PasswordFile = "/f" }},
		{"cert without key", "tls.key_file", func(c *Config) { c.TLS.CertFile = "/c" }},
		{"zero dial timeout", "dial_timeout", func(c *Config) { c.DialTimeout = 0 }},
		{"zero read timeout", "read_timeout", func(c *Config) { c.ReadTimeout = 0 }},
		{"bad compression", "compression", func(c *Config) { c.Compression = "snappy" }},
		{"negative ttl", "schema.events_ttl_days", func(c *Config) { c.Schema.EventsTTLDays = -1 }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := NewDefaultConfig()
			tc.mut(&c)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.path+": ") {
				t.Fatalf("Validate = %v, want an error at %s", err, tc.path)
			}
		})
	}
}

// The block loads strictly: a typo is an error, not an ignored key.
func TestConfigDecodeStrict(t *testing.T) {
	var c Config
	doc := "url: https://ch.example:8443\ndatabase: siem\nusername: writer\npassword_file: /run/secrets/ch\n" +
		"tls:\n  ca_file: /etc/ca.pem\nasync_insert: true\nschema:\n  manage: false\n  events_ttl_days: 30\n"
	if err := config.Decode([]byte(doc), "sink.yaml", &c, config.WithEnviron(nil)); err != nil {
		t.Fatal(err)
	}
	if c.URL != "https://ch.example:8443" || c.TLS.CAFile != "/etc/ca.pem" || c.Schema.Manage || c.Schema.EventsTTLDays != 30 || !c.AsyncInsert {
		t.Fatalf("decoded %+v", c)
	}
	err := config.Decode([]byte("schema:\n  events_ttl_day: 3\n"), "sink.yaml", &c, config.WithEnviron(nil))
	if err == nil || !strings.Contains(err.Error(), "events_ttl_days") {
		t.Fatalf("typo: %v, want an error suggesting events_ttl_days", err)
	}
}

func TestConfigOptions(t *testing.T) {
	cases := []struct {
		url      string
		protocol clickhouse.Protocol
		addr     string
		tls      bool
	}{
		{"http://127.0.0.1:8123", clickhouse.HTTP, "127.0.0.1:8123", false},
		{"http://ch", clickhouse.HTTP, "ch:8123", false},
		{"https://ch", clickhouse.HTTP, "ch:8443", true},
		{"clickhouse://ch", clickhouse.Native, "ch:9000", false},
		{"clickhouses://ch:9441", clickhouse.Native, "ch:9441", true},
		{"http://[::1]", clickhouse.HTTP, "[::1]:8123", false},
	}
	for _, tc := range cases {
		c := NewDefaultConfig()
		c.URL = tc.url
		opt, err := c.options("db")
		if err != nil {
			t.Fatalf("%s: %v", tc.url, err)
		}
		if opt.Protocol != tc.protocol || len(opt.Addr) != 1 || opt.Addr[0] != tc.addr || (opt.TLS != nil) != tc.tls || opt.Auth.Database != "db" {
			t.Errorf("%s: protocol %v addr %v tls %v db %q", tc.url, opt.Protocol, opt.Addr, opt.TLS != nil, opt.Auth.Database)
		}
	}
	c := NewDefaultConfig()
	c.URL = "clickhouse://ch"
	c.Compression = "gzip"
	if _, err := c.options("db"); err == nil {
		t.Error("gzip over the native protocol accepted")
	}
}

func TestConfigSecrets(t *testing.T) {
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "pw")
	if err := os.WriteFile(pwFile, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := NewDefaultConfig()
	c.PasswordFile = pwFile
	opt, err := c.options("db")
	if err != nil {
		t.Fatal(err)
	}
	if opt.Auth.Password != "s3cret" {
		t.Errorf("password from file = %q", opt.Auth.Password)
	}
	c.PasswordFile = ""
	c.Password = "inline"
	if s := fmt.Sprintf("%v %+v", c, c); strings.Contains(s, "inline") {
		t.Errorf("the password prints: %s", s)
	}
}

// ca_file pins the CA: the pool holds that certificate and nothing else.
func TestConfigTLSPinning(t *testing.T) {
	dir := t.TempDir()
	caFile := filepath.Join(dir, "ca.pem")
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "crowsnest test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	c := NewDefaultConfig()
	c.URL = "https://ch.example"
	c.TLS = TLSConfig{CAFile: caFile, ServerName: "ch.internal"}
	opt, err := c.options("db")
	if err != nil {
		t.Fatal(err)
	}
	if opt.TLS == nil || opt.TLS.RootCAs == nil || opt.TLS.ServerName != "ch.internal" || opt.TLS.MinVersion < 0x0303 {
		t.Fatalf("tls = %+v", opt.TLS)
	}
	cert, _ := x509.ParseCertificate(der)
	if !opt.TLS.RootCAs.Equal(func() *x509.CertPool { p := x509.NewCertPool(); p.AddCert(cert); return p }()) {
		t.Error("the pool is not exactly the pinned CA")
	}
	c.TLS.CAFile = filepath.Join(dir, "missing.pem")
	if _, err := c.options("db"); err == nil {
		t.Error("a missing ca_file accepted")
	}
	if err := os.WriteFile(caFile, []byte("not pem"), 0o600); err != nil {
		t.Fatal(err)
	}
	c.TLS.CAFile = caFile
	if _, err := c.options("db"); err == nil || !strings.Contains(err.Error(), "no PEM certificate") {
		t.Errorf("a ca_file without a certificate: %v", err)
	}
}
