package access_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/crowsnest-siem/crowsnest/sinks/access"
	"github.com/crowsnest-siem/crowsnest/sinks/sink"
)

func TestDecode(t *testing.T) {
	c := exampleConfig(t)
	if got := strings.Join(c.Users(), ","); got != "crowsnest_writer,crowsnest_owner,alice,bob,carol,dave" {
		t.Errorf("users = %s", got)
	}
	// A typo in a key must fail, not drop the tenant's namespaces.
	_, err := access.Decode(strings.NewReader("writer: w\ntenants:\n  - name: a\n    namespace: [a]\n    users: [u]\n"))
	if err == nil || !strings.Contains(err.Error(), "namespace") {
		t.Errorf("typo: %v", err)
	}
	// Defaults fill what the file leaves out.
	c, err = access.Decode(strings.NewReader("analysts: [alice]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Writer != "crowsnest_writer" || c.ClickHouse.Database != "crowsnest" || c.Elasticsearch.TenantRole != "crowsnest_tenant" {
		t.Errorf("defaults: %+v", c)
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name  string
		edit  func(*access.Config)
		paths []string
	}{
		{"example", func(*access.Config) {}, nil},
		{"quote in a namespace", func(c *access.Config) { c.Tenants[0].Namespaces[0] = "a') OR 1=1 --" }, []string{"tenants[0].namespaces[0]"}},
		{"upper-case namespace", func(c *access.Config) { c.Tenants[0].Namespaces[1] = "Payments" }, []string{"tenants[0].namespaces[1]"}},
		{"namespace twice", func(c *access.Config) { c.Tenants[0].Namespaces[1] = "payments" }, []string{"tenants[0].namespaces[1]"}},
		{"no namespaces", func(c *access.Config) { c.Tenants[0].Namespaces = nil }, []string{"tenants[0].namespaces"}},
		{"no users", func(c *access.Config) { c.Tenants[1].Users = nil }, []string{"tenants[1].users"}},
		{"statement in a user name", func(c *access.Config) { c.Tenants[1].Users[0] = "carol; DROP USER default" }, []string{"tenants[1].users[0]"}},
		{"writer with a space", func(c *access.Config) { c.Writer = "crow writer" }, []string{"writer"}},
		{"user in two tenants", func(c *access.Config) { c.Tenants[1].Users[0] = "bob" }, []string{"tenants[1].users[0]"}},
		{"analyst is a tenant user", func(c *access.Config) { c.Analysts[0] = "dave" }, []string{"tenants[1].users[1]"}},
		{"writer is an analyst", func(c *access.Config) { c.Analysts[0] = "crowsnest_writer" }, []string{"analysts[0]"}},
		{"unrestricted tenant user", func(c *access.Config) { c.ClickHouse.Unrestricted = []string{"bob"} }, []string{"clickhouse.unrestricted[0]"}},
		{"tenant name with a dash", func(c *access.Config) { c.Tenants[0].Name = "pay-ments" }, []string{"tenants[0].name"}},
		{"empty tenant name", func(c *access.Config) { c.Tenants[0].Name = "" }, []string{"tenants[0].name"}},
		{"system database", func(c *access.Config) { c.ClickHouse.Database = "system" }, []string{"clickhouse.database"}},
		{"database with a dot", func(c *access.Config) { c.ClickHouse.Database = "a.b" }, []string{"clickhouse.database"}},
		{"nobody", func(c *access.Config) { c.Tenants, c.Analysts = nil, nil }, []string{"tenants"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := exampleConfig(t)
			tc.edit(&c)
			err := c.Validate()
			var got []string
			for _, e := range unjoin(err) {
				var fe *sink.FieldError
				if !errors.As(e, &fe) {
					t.Fatalf("%v is not a field error", e)
				}
				got = append(got, fe.Path)
			}
			if strings.Join(got, " ") != strings.Join(tc.paths, " ") {
				t.Errorf("error paths %v, want %v (%v)", got, tc.paths, err)
			}
			// Nothing is rendered from an invalid config.
			if err != nil {
				if _, rerr := access.ClickHouseStatements(c, passwords(c), nil); rerr == nil {
					t.Error("ClickHouseStatements accepted it")
				}
				if _, rerr := access.ElasticsearchPlan(c, passwords(c), 4); rerr == nil {
					t.Error("ElasticsearchPlan accepted it")
				}
			}
		})
	}
}

func unjoin(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

func TestLoadPasswords(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pw")
	first, err := access.LoadPasswords(dir, []string{"alice", "bob"})
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"alice", "bob"} {
		fi, err := os.Stat(filepath.Join(dir, u))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v", u, fi.Mode())
		}
		if len(first[u].Value()) < 20 {
			t.Errorf("%s: short password", u)
		}
	}
	if first["alice"].Value() == first["bob"].Value() {
		t.Error("two users got one password")
	}
	// Re-running keeps them.
	again, err := access.LoadPasswords(dir, []string{"bob", "alice"})
	if err != nil {
		t.Fatal(err)
	}
	if again["alice"] != first["alice"] || again["bob"] != first["bob"] {
		t.Error("passwords changed on a second run")
	}
	if err := os.WriteFile(filepath.Join(dir, "carol"), []byte("short\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := access.LoadPasswords(dir, []string{"carol"}); err == nil {
		t.Error("a short password was accepted")
	}
	if _, err := access.LoadPasswords(dir, []string{"../etc/passwd"}); err == nil {
		t.Error("a path as user name was accepted")
	}
}
