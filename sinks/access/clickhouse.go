package access

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"strings"

	chsink "github.com/crowsnest-siem/crowsnest/sinks/clickhouse"
)

// NamespaceField is the registry field tenants are separated by: the
// Kubernetes namespace of the event's object or workload.
const NamespaceField = "orchestrator.namespace"

// Row policy names, one of each per table that holds namespaced rows.
const (
	policyUnrestricted = "crowsnest_unrestricted"
	policyOthers       = "crowsnest_others"
)

// ClickHouseTables splits the sink's tables into those holding a
// namespace column (they get row policies and tenant grants) and the
// others (no tenant may read them: alerts_by_rule_hourly counts across
// namespaces, so no row of it belongs to one tenant).
func ClickHouseTables() (namespaced, other []string, column string, err error) {
	s, err := chsink.RegistrySchema()
	if err != nil {
		return nil, nil, "", err
	}
	column = strings.ReplaceAll(NamespaceField, ".", "_")
	for _, t := range s.Tables {
		has := false
		for _, c := range t.Columns {
			has = has || c.Name == column
		}
		if has {
			namespaced = append(namespaced, t.Name)
		} else {
			other = append(other, t.Name)
		}
	}
	if len(namespaced) == 0 {
		return nil, nil, "", fmt.Errorf("no table of the schema has column %s", column)
	}
	return namespaced, other, column, nil
}

// ClickHouseStatements returns the statements that create the config's
// users and roles and grant them their rights, in an order a user with
// access management can run as is, each idempotent. Passwords are stored
// as salted SHA-256 (sha256_hash); salt supplies the salts (nil: a secure
// random source).
func ClickHouseStatements(c Config, pw Passwords, salt io.Reader) ([]string, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if salt == nil {
		salt = rand.Reader
	}
	namespaced, _, column, err := ClickHouseTables()
	if err != nil {
		return nil, err
	}
	db := c.ClickHouse.Database
	var out []string

	// Users first: GRANT and TO name existing principals only.
	for _, u := range c.Users() {
		p, ok := pw[u]
		if !ok || !p.IsSet() {
			return nil, fmt.Errorf("clickhouse: no password for user %s", u)
		}
		var s [16]byte
		if _, err := io.ReadFull(salt, s[:]); err != nil {
			return nil, fmt.Errorf("clickhouse: salt: %w", err)
		}
		saltHex := hex.EncodeToString(s[:])
		sum := sha256.Sum256([]byte(p.Value() + saltHex))
		auth := " IDENTIFIED WITH sha256_hash BY " + quote(hex.EncodeToString(sum[:])) + " SALT " + quote(saltHex)
		// IF NOT EXISTS keeps the user's other settings; the ALTER makes the
		// password the file's on every run.
		out = append(out, "CREATE USER IF NOT EXISTS "+u+auth, "ALTER USER "+u+auth)
	}

	// The writer's and analysts' grants are the sink's own (one source).
	base, err := chsink.Access{Database: db, Owner: c.ClickHouse.Owner, Writer: c.Writer, Analyst: c.AnalystRole}.Statements()
	if err != nil {
		return nil, err
	}
	out = append(out, base...)
	for _, u := range c.Analysts {
		out = append(out, "GRANT "+c.AnalystRole+" TO "+u, "ALTER USER "+u+" DEFAULT ROLE "+c.AnalystRole)
	}

	// Tenants read the namespaced tables only, through their row policy.
	var tenantRoles []string
	for _, t := range c.Tenants {
		role := c.ClickHouse.TenantRolePrefix + t.Name
		tenantRoles = append(tenantRoles, role)
		out = append(out, "CREATE ROLE IF NOT EXISTS "+role)
		for _, tb := range namespaced {
			out = append(out, "GRANT SELECT ON "+db+"."+tb+" TO "+role)
		}
		for _, u := range t.Users {
			out = append(out, "GRANT "+role+" TO "+u, "ALTER USER "+u+" DEFAULT ROLE "+role)
		}
	}

	// Once a table has a row policy, whether a user without one reads all
	// of its rows or none depends on the server's
	// users_without_row_policies_can_read_rows. So every principal gets a
	// policy, whatever the setting: the writer (its redelivery lookup), the
	// analysts, the owner and the unrestricted ones all rows; each tenant
	// its namespaces; everyone else none (crowsnest_others, TO ALL EXCEPT).
	// Permissive policies combine with OR, so a tenant also named
	// elsewhere would read more: Validate rejects a name used twice.
	all := []string{c.Writer, c.AnalystRole}
	if c.ClickHouse.Owner != "" {
		all = append(all, c.ClickHouse.Owner)
	}
	all = append(all, c.ClickHouse.Unrestricted...)
	known := append(append([]string{}, all...), tenantRoles...)
	for _, tb := range namespaced {
		on := " ON " + db + "." + tb + " FOR SELECT USING "
		out = append(out, "CREATE ROW POLICY OR REPLACE "+policyUnrestricted+on+"1 AS PERMISSIVE TO "+strings.Join(all, ", "))
		for i, t := range c.Tenants {
			ns := make([]string, len(t.Namespaces))
			for j, n := range t.Namespaces {
				ns[j] = quote(n)
			}
			out = append(out, "CREATE ROW POLICY OR REPLACE "+tenantRoles[i]+on+column+" IN ("+strings.Join(ns, ", ")+") AS PERMISSIVE TO "+tenantRoles[i])
		}
		out = append(out, "CREATE ROW POLICY OR REPLACE "+policyOthers+on+"0 AS PERMISSIVE TO ALL EXCEPT "+strings.Join(known, ", "))
	}
	return out, nil
}

// ClickHouseScript returns the statements as one SQL script, one per line.
func ClickHouseScript(c Config, pw Passwords, salt io.Reader) (string, error) {
	stmts, err := ClickHouseStatements(c, pw, salt)
	if err != nil {
		return "", err
	}
	return ClickHouseScriptOf(stmts), nil
}

// ClickHouseScriptOf writes statements as a script, one per line.
func ClickHouseScriptOf(stmts []string) string {
	return "-- Generated by crowsnest store-access. Run as a user with access management.\n" +
		strings.Join(stmts, ";\n") + ";\n"
}

// quote is a ClickHouse string literal. Inputs are validated names and
// hex; the escaping keeps that from being the only defence.
func quote(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

// Execer runs one statement: a clickhouse-go driver.Conn is one.
type Execer interface {
	Exec(ctx context.Context, query string, args ...any) error
}

// ApplyClickHouse runs the statements in order, stopping at the first
// that fails and naming it (its password hash elided).
func ApplyClickHouse(ctx context.Context, conn Execer, stmts []string) error {
	for i, q := range stmts {
		if err := conn.Exec(ctx, q); err != nil {
			return fmt.Errorf("clickhouse: statement %d (%s): %w", i+1, redactAuth(q), err)
		}
	}
	return nil
}

// redactAuth cuts a statement at its IDENTIFIED clause.
func redactAuth(q string) string {
	if i := strings.Index(q, " IDENTIFIED "); i >= 0 {
		return q[:i] + " IDENTIFIED ..."
	}
	return q
}
