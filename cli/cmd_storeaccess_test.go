package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestStoreAccess(t *testing.T) {
	dir := t.TempDir()
	tenants := filepath.Join(dir, "tenants.yaml")
	if err := os.WriteFile(tenants, []byte("analysts: [alice]\ntenants:\n  - name: payments\n    namespaces: [payments]\n    users: [bob]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	pwDir, out := filepath.Join(dir, "pw"), filepath.Join(dir, "out")
	stdout, stderr, code := execute(t, "", "store-access", tenants, "--passwords", pwDir, "--out", out)
	if code != 0 {
		t.Fatalf("exit %d: %s%s", code, stdout, stderr)
	}
	script, err := os.ReadFile(filepath.Join(out, "clickhouse.sql"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"CREATE USER IF NOT EXISTS bob IDENTIFIED WITH sha256_hash BY",
		"GRANT INSERT ON crowsnest.events TO crowsnest_writer",
		"CREATE ROW POLICY OR REPLACE crowsnest_tenant_payments ON crowsnest.events FOR SELECT USING orchestrator_namespace IN ('payments')",
	} {
		if !strings.Contains(string(script), want) {
			t.Errorf("clickhouse.sql lacks %q", want)
		}
	}
	var user struct {
		Roles    []string `json:"roles"`
		Metadata struct {
			Namespaces []string `json:"namespaces"`
		} `json:"metadata"`
	}
	raw, err := os.ReadFile(filepath.Join(out, "elasticsearch/users/bob.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &user); err != nil || strings.Join(user.Roles, ",") != "crowsnest_tenant" || strings.Join(user.Metadata.Namespaces, ",") != "payments" {
		t.Errorf("bob.json: %s (%v)", raw, err)
	}
	if _, err := os.Stat(filepath.Join(out, "elasticsearch/roles/crowsnest_tenant.json")); err != nil {
		t.Error(err)
	}
	// Nothing written or printed holds a password.
	for _, u := range []string{"crowsnest_writer", "alice", "bob"} {
		fi, err := os.Stat(filepath.Join(pwDir, u))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("password file of %s: mode %v", u, fi.Mode())
		}
		pw, err := os.ReadFile(filepath.Join(pwDir, u))
		if err != nil {
			t.Fatal(err)
		}
		p := strings.TrimSpace(string(pw))
		err = filepath.Walk(out, func(path string, info os.FileInfo, err error) error {
			if err != nil || info.IsDir() {
				return err
			}
			b, err := os.ReadFile(path)
			if strings.Contains(string(b), p) {
				t.Errorf("%s holds %s's password", path, u)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(stdout+stderr, p) {
			t.Errorf("the output holds %s's password", u)
		}
	}

	for _, tc := range []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"no passwords dir", []string{tenants, "--out", out}, 2, "--passwords"},
		{"nothing to do", []string{tenants, "--passwords", pwDir}, 2, "nothing to do"},
		{"credentials in the URL", []string{tenants, "--passwords", pwDir, "--clickhouse-url", "http://default:secret@127.0.0.1:8123"}, 2, "without credentials"},
		{"credentials in the ES URL", []string{tenants, "--passwords", pwDir, "--elasticsearch-url", "https://elastic:secret@127.0.0.1:9200"}, 2, "without credentials"},
		{"no ES password", []string{tenants, "--passwords", pwDir, "--elasticsearch-url", "https://127.0.0.1:1"}, 1, envESAdminPassword},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(envESAdminPassword, "")
			_, stderr, code := execute(t, "", append([]string{"store-access"}, tc.args...)...)
			if code != tc.code || !strings.Contains(stderr, tc.msg) {
				t.Errorf("exit %d, %q; want %d and %q", code, stderr, tc.code, tc.msg)
			}
			if strings.Contains(stderr, "secret") {
				t.Errorf("the error repeats the password: %s", stderr)
			}
		})
	}
	// An invalid tenants file is refused before anything is written.
	if err := os.WriteFile(tenants, []byte("tenants:\n  - name: x\n    namespaces: [\"a') OR 1=1 --\"]\n    users: [eve]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, stderr, code := execute(t, "", "store-access", tenants, "--passwords", pwDir, "--out", out); code != 1 || !strings.Contains(stderr, "namespaces[0]") {
		t.Errorf("injection: exit %d, %q", code, stderr)
	}
	if _, err := os.Stat(filepath.Join(pwDir, "eve")); err == nil {
		t.Error("a password was created for a refused file")
	}
}

// Applying to the development engine reaches it and reports, naming the
// statement, that it cannot create users; a real server with an
// administrator is exercised by sinks/access.
func TestStoreAccessApplyClickHouse(t *testing.T) {
	url := os.Getenv("CROWSNEST_TEST_CLICKHOUSE_URL")
	if url == "" {
		t.Skip("CROWSNEST_TEST_CLICKHOUSE_URL is not set")
	}
	dir := t.TempDir()
	tenants := filepath.Join(dir, "tenants.yaml")
	if err := os.WriteFile(tenants, []byte("analysts: [cn_cli_alice]\nwriter: cn_cli_writer\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv(envCHAdminPassword, "")
	_, stderr, code := execute(t, "", "store-access", tenants, "--passwords", filepath.Join(dir, "pw"), "--clickhouse-url", url)
	if code == 0 {
		t.Skip("the server created the users: it has access management (the development engine has not)")
	}
	if code != 1 || !strings.Contains(stderr, "statement 1 (CREATE USER IF NOT EXISTS cn_cli_writer IDENTIFIED ...)") {
		t.Errorf("exit %d: %s", code, stderr)
	}
}
