package access_test

import (
	"context"
	"crypto/rand"
	"errors"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/crowsnest-siem/crowsnest/daemon/config"
	"github.com/crowsnest-siem/crowsnest/sinks/access"
	chsink "github.com/crowsnest-siem/crowsnest/sinks/clickhouse"
	"github.com/crowsnest-siem/crowsnest/sinks/sink"
	"github.com/crowsnest-siem/crowsnest/sinks/sink/sinktest"
)

// fixedSalt makes the script reproducible for its golden file.
func fixedSalt() *strings.Reader { return strings.NewReader(strings.Repeat("0123456789abcdef", 64)) }

func TestClickHouseScript(t *testing.T) {
	c := exampleConfig(t)
	pw := passwords(c)
	script, err := access.ClickHouseScript(c, pw, fixedSalt())
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "clickhouse.sql", []byte(script))
	for u, p := range pw {
		if strings.Contains(script, p.Value()) {
			t.Errorf("the script holds %s's password", u)
		}
	}
	// Tenants never get the table that counts across namespaces.
	namespaced, other, column, err := access.ClickHouseTables()
	if err != nil {
		t.Fatal(err)
	}
	if column != "orchestrator_namespace" || !slices.Contains(namespaced, "events") || !slices.Contains(namespaced, "alerts") || !slices.Contains(other, "alerts_by_rule_hourly") {
		t.Fatalf("tables: namespaced %v, other %v, column %s", namespaced, other, column)
	}
	for _, line := range strings.Split(script, "\n") {
		if strings.Contains(line, "crowsnest_tenant_") && strings.Contains(line, "alerts_by_rule_hourly") {
			t.Errorf("a tenant reaches alerts_by_rule_hourly: %s", line)
		}
	}
	// A fresh salt per user and run: the same password never hashes twice alike.
	again, err := access.ClickHouseScript(c, pw, nil)
	if err != nil {
		t.Fatal(err)
	}
	if again == script {
		t.Error("two runs with random salts rendered the same hashes")
	}
	if _, err := access.ClickHouseStatements(c, access.Passwords{}, nil); err == nil {
		t.Error("rendered users without passwords")
	}
}

// engineURL is the ClickHouse engine the statements are parsed by (the
// development server: chdb), or the test skips.
func engineURL(tb testing.TB) string {
	tb.Helper()
	u := os.Getenv("CROWSNEST_TEST_CLICKHOUSE_URL")
	if u == "" {
		tb.Skip("CROWSNEST_TEST_CLICKHOUSE_URL is not set: no ClickHouse engine to parse the statements (make services-up, then eval \"$(bash deploy/dev/services.sh env)\")")
	}
	return u
}

// connect opens cfg's server as user with password (empty user: as the
// URL says), closed when the test ends.
func connect(tb testing.TB, rawURL, database, user, password string) driver.Conn {
	tb.Helper()
	cfg := chConfig(tb, rawURL, database)
	if user != "" {
		cfg.Username, cfg.Password = user, config.Secret(password)
	}
	conn, err := chsink.Open(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = conn.Close() })
	return conn
}

func chConfig(tb testing.TB, rawURL, database string) chsink.Config {
	tb.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		tb.Fatal(err)
	}
	cfg := chsink.NewDefaultConfig()
	if u.User != nil {
		cfg.Username = u.User.Username()
		p, _ := u.User.Password()
		cfg.Password = config.Secret(p)
		u.User = nil
	}
	cfg.URL, cfg.Database = u.String(), database
	cfg.DialTimeout, cfg.ReadTimeout = 5*time.Second, time.Minute
	return cfg
}

// Every generated statement is parsed by the real engine: a statement the
// server could not run for its syntax fails here, not at apply time.
func TestClickHouseStatementsParse(t *testing.T) {
	conn := connect(t, engineURL(t), "default", "", "")
	ctx := testCtx(t)
	c := exampleConfig(t)
	stmts, err := access.ClickHouseStatements(c, passwords(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	format := func(q string) (string, error) {
		var out string
		err := conn.QueryRow(clickhouse.Context(ctx, clickhouse.WithParameters(clickhouse.Parameters{"q": q})), "SELECT formatQuery({q:String})").Scan(&out)
		return out, err
	}
	for _, q := range stmts {
		out, err := format(q)
		if err != nil {
			t.Errorf("%s: %v", q, err)
			continue
		}
		if out == "" {
			t.Errorf("%s: formatted to nothing", q)
		}
	}
	// The check can fail: a policy missing its condition does not parse.
	if _, err := format("CREATE ROW POLICY p ON crowsnest.events FOR SELECT USING AS PERMISSIVE TO x"); err == nil {
		t.Error("the engine parsed a broken statement")
	}
}

// Each tenant policy's condition, evaluated by the engine over a column of
// namespaces, keeps exactly the tenant's namespaces.
func TestClickHousePolicyConditions(t *testing.T) {
	conn := connect(t, engineURL(t), "default", "", "")
	ctx := testCtx(t)
	c := exampleConfig(t)
	stmts, err := access.ClickHouseStatements(c, passwords(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	all := []string{"payments", "payments-jobs", "search", "other", "", "PAYMENTS", "payments-jobs-2"}
	seen := 0
	for _, tn := range c.Tenants {
		prefix := "CREATE ROW POLICY OR REPLACE " + c.ClickHouse.TenantRolePrefix + tn.Name + " ON " + c.ClickHouse.Database + ".events FOR SELECT USING "
		for _, q := range stmts {
			cond, ok := strings.CutPrefix(q, prefix)
			if !ok {
				continue
			}
			seen++
			cond, _, _ = strings.Cut(cond, " AS PERMISSIVE")
			var got []string
			// Namespaces cannot hold a quote (Validate), so the list is
			// written as literals; the quote-bearing value below stays out.
			var lits []string
			for _, n := range all {
				if !strings.Contains(n, "'") {
					lits = append(lits, "'"+n+"'")
				}
			}
			err := conn.QueryRow(ctx, "SELECT groupArray(orchestrator_namespace) FROM (SELECT arrayJoin(["+strings.Join(lits, ", ")+"]) AS orchestrator_namespace) WHERE "+cond).Scan(&got)
			if err != nil {
				t.Fatalf("%s: %v", cond, err)
			}
			slices.Sort(got)
			want := slices.Sorted(slices.Values(tn.Namespaces))
			if !slices.Equal(got, want) {
				t.Errorf("tenant %s: %s keeps %v, want %v", tn.Name, cond, got, want)
			}
		}
	}
	if seen != len(c.Tenants) {
		t.Fatalf("found %d tenant policies on events, want %d", seen, len(c.Tenants))
	}
}

// EnvClickHouseAdminURL names a ClickHouse server and an administrator
// with access management, for the behavioural test.
const EnvClickHouseAdminURL = "CROWSNEST_TEST_CLICKHOUSE_ADMIN_URL"

// The generated access, applied on a real server, lets each principal do
// its job and nothing more. The development engine (chdb) has no writable
// user storage, so this runs only against a real server.
func TestClickHouseOnServer(t *testing.T) {
	adminURL := os.Getenv(EnvClickHouseAdminURL)
	if adminURL == "" {
		t.Skipf("%s is not set: the roles and row policies are checked as SQL parsed by the engine only. "+
			"Point it at a ClickHouse server and a user with access_management (http://default:PASSWORD@host:8123) to check them for real; "+
			"the development engine (chdb) cannot: it has no writable user directory (CREATE USER: ACCESS_STORAGE_FOR_INSERTION_NOT_FOUND)", EnvClickHouseAdminURL)
	}
	ctx := testCtx(t)
	sfx := strings.ToLower(rand.Text()[:8])
	db := "cn_access_" + sfx
	admin := connect(t, adminURL, "default", "", "")
	adminName := chConfig(t, adminURL, "default").Username

	c := access.NewDefaultConfig()
	c.Writer, c.AnalystRole = "cn_w_"+sfx, "cn_an_"+sfx
	c.Analysts = []string{"cn_alice_" + sfx}
	c.Tenants = []access.Tenant{
		{Name: "pay_" + sfx, Namespaces: []string{"payments", "payments-jobs"}, Users: []string{"cn_bob_" + sfx}},
		{Name: "srch_" + sfx, Namespaces: []string{"search"}, Users: []string{"cn_carol_" + sfx}},
	}
	c.ClickHouse.Database = db
	c.ClickHouse.Unrestricted = []string{adminName}
	stranger := "cn_stranger_" + sfx
	pw := passwords(c)
	pw[stranger] = "stranger-Secret-1"
	namespaced, _, _, err := access.ClickHouseTables()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx := context.Background()
		var drops []string
		for _, tb := range namespaced {
			drops = append(drops, "DROP ROW POLICY IF EXISTS crowsnest_unrestricted, crowsnest_others ON "+db+"."+tb)
			for _, tn := range c.Tenants {
				drops = append(drops, "DROP ROW POLICY IF EXISTS "+c.ClickHouse.TenantRolePrefix+tn.Name+" ON "+db+"."+tb)
			}
		}
		for _, u := range append(c.Users(), stranger) {
			drops = append(drops, "DROP USER IF EXISTS "+u)
		}
		drops = append(drops, "DROP ROLE IF EXISTS "+c.AnalystRole)
		for _, tn := range c.Tenants {
			drops = append(drops, "DROP ROLE IF EXISTS "+c.ClickHouse.TenantRolePrefix+tn.Name)
		}
		drops = append(drops, "DROP DATABASE IF EXISTS "+db+" SYNC")
		for _, q := range drops {
			if err := admin.Exec(ctx, q); err != nil {
				t.Logf("%s: %v", q, err)
			}
		}
	})

	// The schema, as an administrator applies it (the writer has no DDL).
	owner, err := chsink.New(chConfig(t, adminURL, db), sinktest.Settings(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = owner.Close(context.Background()) })
	if err := owner.EnsureSchema(ctx); err != nil {
		t.Fatal(err)
	}
	stmts, err := access.ClickHouseStatements(c, pw, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := access.ApplyClickHouse(ctx, admin, stmts); err != nil {
		t.Fatal(err)
	}
	// Applying twice changes nothing and fails nothing.
	if err := access.ApplyClickHouse(ctx, admin, stmts); err != nil {
		t.Fatalf("second apply: %v", err)
	}
	// Someone the file does not name, with SELECT on everything.
	for _, q := range []string{"CREATE USER " + stranger + " IDENTIFIED WITH sha256_password BY 'stranger-Secret-1'", "GRANT SELECT ON " + db + ".* TO " + stranger} {
		if err := admin.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}

	// The writer writes through the sink, schema unmanaged.
	wcfg := chConfig(t, adminURL, db)
	wcfg.Username, wcfg.Password, wcfg.Schema.Manage = c.Writer, pw[c.Writer], false
	w, err := chsink.New(wcfg, sinktest.Settings(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Close(context.Background()) })
	batch := []sink.Record{
		record(t, sink.KindEvents, "e1", "payments"), record(t, sink.KindEvents, "e2", "payments-jobs"), record(t, sink.KindEvents, "e3", "payments"),
		record(t, sink.KindEvents, "e4", "search"), record(t, sink.KindEvents, "e5", "search"), record(t, sink.KindEvents, "e6", "kube-system"),
		record(t, sink.KindAlerts, "a1", "payments"), record(t, sink.KindAlerts, "a2", "search"),
	}
	if err := w.WriteBatch(ctx, batch); err != nil {
		t.Fatalf("writer: %v", err)
	}
	// A redelivery: only the writer's lookup, through its row policy, keeps
	// it from being stored twice.
	if err := w.WriteBatch(ctx, batch[:3]); err != nil {
		t.Fatalf("writer, redelivery: %v", err)
	}

	as := func(user string) driver.Conn { return connect(t, adminURL, db, user, pw[user].Value()) }
	countAs := func(conn driver.Conn, q string) (uint64, error) {
		var n uint64
		err := conn.QueryRow(ctx, q).Scan(&n)
		return n, err
	}
	denied := func(what string, err error) {
		t.Helper()
		var ex *clickhouse.Exception
		if !errors.As(err, &ex) || ex.Code != 497 {
			t.Errorf("%s: %v, want ACCESS_DENIED (497)", what, err)
		}
	}
	for _, tc := range []struct {
		who   driver.Conn
		name  string
		query string
		want  uint64
	}{
		{admin, "admin (unrestricted)", "SELECT count() FROM " + db + ".events", 6},
		{as(c.Analysts[0]), "analyst", "SELECT count() FROM events", 6},
		{as(c.Analysts[0]), "analyst, alerts", "SELECT count() FROM alerts", 2},
		{as(c.Analysts[0]), "analyst, rule rollup", "SELECT sum(rows) FROM alerts_by_rule_hourly", 2},
		{as(c.Tenants[0].Users[0]), "payments tenant", "SELECT count() FROM events", 3},
		{as(c.Tenants[0].Users[0]), "payments tenant, other namespaces", "SELECT count() FROM events WHERE orchestrator_namespace NOT IN ('payments', 'payments-jobs')", 0},
		{as(c.Tenants[0].Users[0]), "payments tenant, alerts", "SELECT count() FROM alerts", 1},
		{as(c.Tenants[0].Users[0]), "payments tenant, namespace rollup", "SELECT sum(rows) FROM events_by_namespace_hourly", 3},
		{as(c.Tenants[1].Users[0]), "search tenant", "SELECT count() FROM events", 2},
		{as(stranger), "a user the file does not name", "SELECT count() FROM events", 0},
	} {
		n, err := countAs(tc.who, tc.query)
		if err != nil || n != tc.want {
			t.Errorf("%s: %s = %d, %v; want %d", tc.name, tc.query, n, err, tc.want)
		}
	}
	bob := as(c.Tenants[0].Users[0])
	_, err = countAs(bob, "SELECT sum(rows) FROM alerts_by_rule_hourly")
	denied("tenant reads the cross-namespace rule rollup", err)
	denied("tenant inserts", bob.Exec(ctx, "INSERT INTO events (event_id) VALUES ('x')"))
	wconn := as(c.Writer)
	var msg string
	denied("writer reads messages", wconn.QueryRow(ctx, "SELECT message FROM events LIMIT 1").Scan(&msg))
	denied("writer drops", wconn.Exec(ctx, "DROP TABLE events"))
	denied("writer creates a user", wconn.Exec(ctx, "CREATE USER cn_evil_"+sfx))
	denied("analyst inserts", as(c.Analysts[0]).Exec(ctx, "INSERT INTO events (event_id) VALUES ('x')"))
}

func testCtx(tb testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	tb.Cleanup(cancel)
	return ctx
}
