package ingress

import (
	"strings"
	"testing"
)

func TestIsLoopback(t *testing.T) {
	for host, want := range map[string]bool{
		"127.0.0.1": true, "127.9.9.9": true, "::1": true, "localhost": true,
		"0.0.0.0": false, "": false, "10.0.0.1": false, "::": false, "example.com": false, "localhost.evil.com": false,
	} {
		if got := IsLoopback(host); got != want {
			t.Errorf("IsLoopback(%q) = %v, want %v", host, got, want)
		}
	}
}

func TestValidate(t *testing.T) {
	tlsOK := func(c *Config) { c.TLS.CertFile, c.TLS.KeyFile = "c", "k" }
	for _, tc := range []struct {
		name    string
		mod     func(*Config)
		wantErr string
	}{
		{"tls", tlsOK, ""},
		{"insecure loopback", func(c *Config) { c.Listen = "127.0.0.1:1"; c.AllowInsecureLoopback = true }, ""},
		{"insecure not allowed", func(c *Config) { c.Listen = "127.0.0.1:1" }, "allow_insecure_loopback"},
		{"insecure on all interfaces", func(c *Config) { c.AllowInsecureLoopback = true }, "loopback"},
		{"cert without key", func(c *Config) { c.TLS.CertFile = "c" }, "go together"},
		{"client CA without TLS", func(c *Config) { c.Listen = "[::1]:1"; c.AllowInsecureLoopback = true; c.TLS.ClientCAFile = "ca" }, "needs TLS"},
		{"bad listen", func(c *Config) { tlsOK(c); c.Listen = "9443" }, "host:port"},
		{"tls 1.1", func(c *Config) { tlsOK(c); c.TLS.MinVersion = "1.1" }, "min_version"},
		{"tiny timeout", func(c *Config) { tlsOK(c); c.RequestTimeout = 1 }, "request_timeout"},
		{"no slots", func(c *Config) { tlsOK(c); c.MaxInFlightRequests = 0 }, "max_in_flight_requests"},
		{"sub-second retry", func(c *Config) { tlsOK(c); c.RetryAfter = 1 }, "retry_after"},
	} {
		c := NewDefaultConfig("0.0.0.0:9443")
		tc.mod(&c)
		err := c.Validate()
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("%s: %v, want an error about %s", tc.name, err, tc.wantErr)
		}
	}
}
