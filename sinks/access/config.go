package access

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"

	"go.yaml.in/yaml/v3"

	chsink "github.com/crowsnest-siem/crowsnest/sinks/clickhouse"
	"github.com/crowsnest-siem/crowsnest/sinks/sink"
)

// Config is the tenants file: who may do what in both stores. Every name
// is a user or role name in both ClickHouse and Elasticsearch.
type Config struct {
	// Writer is the user the sinks connect as.
	Writer string `yaml:"writer"`
	// AnalystRole is the role that reads everything; Analysts are the users
	// given it.
	AnalystRole string   `yaml:"analyst_role"`
	Analysts    []string `yaml:"analysts"`
	// Tenants each read the events and alerts of their namespaces only.
	Tenants       []Tenant            `yaml:"tenants"`
	ClickHouse    ClickHouseConfig    `yaml:"clickhouse"`
	Elasticsearch ElasticsearchConfig `yaml:"elasticsearch"`
}

// Tenant is one team reading its own namespaces.
type Tenant struct {
	// Name names the tenant's ClickHouse role (<tenant_role_prefix><name>).
	Name string `yaml:"name"`
	// Namespaces are the Kubernetes namespaces whose events the tenant
	// sees (orchestrator.namespace).
	Namespaces []string `yaml:"namespaces"`
	// Users are the tenant's users; a user belongs to one tenant at most.
	Users []string `yaml:"users"`
}

// ClickHouseConfig is what is specific to ClickHouse.
type ClickHouseConfig struct {
	// Database holds the sink's tables (the sink's database key).
	Database string `yaml:"database"`
	// Owner, when set, is a user that applies the schema (the sink's
	// schema.manage true, or a migration run): DDL on the database only.
	Owner string `yaml:"owner"`
	// TenantRolePrefix prefixes each tenant's role name.
	TenantRolePrefix string `yaml:"tenant_role_prefix"`
	// Unrestricted are existing users or roles (an administrator, say)
	// that keep reading every row of the tables that get row policies.
	// Everyone else not named in this file reads none of those rows.
	Unrestricted []string `yaml:"unrestricted"`
}

// ElasticsearchConfig is what is specific to Elasticsearch.
type ElasticsearchConfig struct {
	// TenantRole is the document-level security role template every tenant
	// user gets; the user's metadata.namespaces selects the documents.
	TenantRole string `yaml:"tenant_role"`
}

// NewDefaultConfig returns the defaults: writer crowsnest_writer, role
// crowsnest_analyst, the ClickHouse sink's default database, tenant roles
// crowsnest_tenant_<name> (ClickHouse) and crowsnest_tenant
// (Elasticsearch), the server's default user unrestricted.
func NewDefaultConfig() Config {
	return Config{
		Writer:      "crowsnest_writer",
		AnalystRole: "crowsnest_analyst",
		ClickHouse: ClickHouseConfig{
			Database:         chsink.NewDefaultConfig().Database,
			TenantRolePrefix: "crowsnest_tenant_",
			Unrestricted:     []string{"default"},
		},
		Elasticsearch: ElasticsearchConfig{TenantRole: "crowsnest_tenant"},
	}
}

// Decode reads a tenants file over the defaults, rejecting unknown keys (a
// typo must not silently drop a tenant), and validates it.
func Decode(r io.Reader) (Config, error) {
	cfg := NewDefaultConfig()
	raw, err := io.ReadAll(r)
	if err != nil {
		return cfg, err
	}
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
		return cfg, err
	}
	return cfg, cfg.Validate()
}

var (
	// nameRE is a principal name both stores accept unquoted and unescaped:
	// nothing in it can end an identifier or a string.
	nameRE = regexp.MustCompile(`^[a-z][a-z0-9_]{0,62}$`)
	// namespaceRE is a Kubernetes namespace (an RFC 1123 label).
	namespaceRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`)
)

// Validate reports every invalid field, joined, each with its key path.
func (c Config) Validate() error {
	var errs []error
	bad := func(path, format string, args ...any) {
		errs = append(errs, sink.NewFieldError(path, format, args...))
	}
	// seen maps each principal name to the key that declared it: one name,
	// one principal, or a user would silently get two roles' rights.
	seen := map[string]string{}
	name := func(path, v string) {
		switch {
		case !nameRE.MatchString(v):
			bad(path, "%q must match %s", v, nameRE)
		case seen[v] != "":
			bad(path, "%q is already %s", v, seen[v])
		default:
			seen[v] = path
		}
	}
	name("writer", c.Writer)
	name("analyst_role", c.AnalystRole)
	if c.ClickHouse.Owner != "" {
		name("clickhouse.owner", c.ClickHouse.Owner)
	}
	name("elasticsearch.tenant_role", c.Elasticsearch.TenantRole)
	for i, u := range c.Analysts {
		name(fmt.Sprintf("analysts[%d]", i), u)
	}
	if !nameRE.MatchString(c.ClickHouse.TenantRolePrefix + "x") {
		bad("clickhouse.tenant_role_prefix", "%q must start a name matching %s", c.ClickHouse.TenantRolePrefix, nameRE)
	}
	if _, err := (chsink.Access{Database: c.ClickHouse.Database, Writer: "w", Analyst: "a"}).Statements(); err != nil {
		bad("clickhouse.database", "%v", err)
	}
	if len(c.Tenants) == 0 && len(c.Analysts) == 0 {
		bad("tenants", "declare at least one tenant or analyst")
	}
	for i, t := range c.Tenants {
		p := fmt.Sprintf("tenants[%d]", i)
		name(p+".name", c.ClickHouse.TenantRolePrefix+t.Name)
		if t.Name == "" {
			bad(p+".name", "must not be empty")
		}
		if len(t.Namespaces) == 0 {
			bad(p+".namespaces", "list at least one namespace: a tenant without one would read nothing")
		}
		ns := map[string]bool{}
		for j, n := range t.Namespaces {
			switch {
			case !namespaceRE.MatchString(n):
				bad(fmt.Sprintf("%s.namespaces[%d]", p, j), "%q is not a Kubernetes namespace (%s)", n, namespaceRE)
			case ns[n]:
				bad(fmt.Sprintf("%s.namespaces[%d]", p, j), "%q listed twice", n)
			}
			ns[n] = true
		}
		if len(t.Users) == 0 {
			bad(p+".users", "list at least one user")
		}
		for j, u := range t.Users {
			name(fmt.Sprintf("%s.users[%d]", p, j), u)
		}
	}
	// After every principal: an unrestricted name must be none of them.
	for i, u := range c.ClickHouse.Unrestricted {
		if !nameRE.MatchString(u) {
			bad(fmt.Sprintf("clickhouse.unrestricted[%d]", i), "%q must match %s", u, nameRE)
		} else if seen[u] != "" {
			bad(fmt.Sprintf("clickhouse.unrestricted[%d]", i), "%q is already %s: it would read every row", u, seen[u])
		}
	}
	return errors.Join(errs...)
}

// Users returns every user the config declares (writer, owner, analysts,
// tenants' users), in config order: the users that need a password.
func (c Config) Users() []string {
	out := []string{c.Writer}
	if c.ClickHouse.Owner != "" {
		out = append(out, c.ClickHouse.Owner)
	}
	out = append(out, c.Analysts...)
	for _, t := range c.Tenants {
		out = append(out, t.Users...)
	}
	return out
}
