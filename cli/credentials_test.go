package main

import (
	"strings"
	"testing"
)

// TestNoCredentialsInArguments: a URL flag carrying a secret is refused
// before anything starts, without repeating the secret; a clean one passes.
func TestNoCredentialsInArguments(t *testing.T) {
	refused := [][]string{
		{"run", "--nats", "nats://bob:hunter2@127.0.0.1:4222"},
		{"run", "--nats", "nats://127.0.0.1:4222,tls://tok-hunter2@10.0.0.1:4222"},
		{"run", "--clickhouse", "http://127.0.0.1:8123/?user=w&password=hunter2"},
		{"run", "--elasticsearch", "https://elastic:hunter2@127.0.0.1:9200"},
		{"run", "--elasticsearch", "https://127.0.0.1:9200/?api_key=hunter2"},
	}
	for _, args := range refused {
		out, errOut, code := execute(t, "", args...)
		if code != 2 || !strings.Contains(errOut, "visible to every user") {
			t.Errorf("%v: exit %d, %s%s; want 2 and a refusal", args, code, out, errOut)
		}
		if strings.Contains(out+errOut, "hunter2") {
			t.Errorf("%v: the secret was echoed: %s%s", args, out, errOut)
		}
	}
	for _, v := range []string{"", "nats://127.0.0.1:4222", "127.0.0.1:4222,tls://h:4222", "http://127.0.0.1:8123/?database=crowsnest", "https://es:9200"} {
		if err := noCredentialsInArgument("x", v); err != nil {
			t.Errorf("%q: %v, want accepted", v, err)
		}
	}
}

// TestConfigCheckRedactsURLCredentials: `config check` lists environment
// overrides with their values; a URL's user:password@ is not printed.
func TestConfigCheckRedactsURLCredentials(t *testing.T) {
	t.Setenv("CROWSNEST_NATS__URL", "nats://bob:hunter2@127.0.0.1:4222,tls://tok3n@10.0.0.1:4222")
	out, errOut, code := execute(t, "", "config", "check", "testdata/good.yaml")
	if code != 0 {
		t.Fatalf("exit %d: %s%s", code, out, errOut)
	}
	if strings.Contains(out+errOut, "hunter2") || strings.Contains(out+errOut, "tok3n") {
		t.Fatalf("credentials printed:\n%s%s", out, errOut)
	}
	if !strings.Contains(out, "nats://[REDACTED]@127.0.0.1:4222,tls://[REDACTED]@10.0.0.1:4222") {
		t.Fatalf("override not listed redacted:\n%s", out)
	}
}
