package access_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/crowsnest-siem/crowsnest/sinks/access"
)

// Whatever the tenants file holds, Decode returns an error or a config
// whose every statement is one statement: no name or namespace can end an
// identifier or a string, or add a statement.
func FuzzDecode(f *testing.F) {
	example, err := os.ReadFile(filepath.Join("testdata", "tenants.yaml"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(string(example))
	f.Add("analysts: [alice]\n")
	f.Add("tenants:\n  - name: a\n    namespaces: [\"a') OR 1=1 --\"]\n    users: [u]\n")
	f.Add("writer: \"w; DROP USER x\"\nanalysts: [a]\n")
	f.Fuzz(func(t *testing.T, in string) {
		c, err := access.Decode(strings.NewReader(in))
		if err != nil {
			return
		}
		pw := passwords(c)
		stmts, err := access.ClickHouseStatements(c, pw, nil)
		if err != nil {
			t.Fatalf("valid config, no statements: %v", err)
		}
		for _, q := range stmts {
			if strings.ContainsAny(q, ";\n\\`\"") || strings.Count(q, "'")%2 != 0 {
				t.Fatalf("statement could break out: %q", q)
			}
		}
		plan, err := access.ElasticsearchPlan(c, pw, bcrypt.MinCost)
		if err != nil {
			t.Fatalf("valid config, no plan: %v", err)
		}
		for _, r := range plan.Roles {
			if b, err := json.Marshal(r); err != nil || !json.Valid(b) {
				t.Fatalf("role %s: %v", r.Name, err)
			}
		}
	})
}
