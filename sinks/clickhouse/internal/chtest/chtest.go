// Package chtest gives the ClickHouse sink's tests a server and a database
// of their own. The server is the one CROWSNEST_TEST_CLICKHOUSE_URL names —
// the development server `make services-up` starts (http://127.0.0.1:8123),
// or a real ClickHouse over HTTP (http://, https://) or the native protocol
// (clickhouse://, clickhouses://), credentials in the URL if it needs them.
// Tests skip, saying why, when the variable is unset.
//
// It is for tests only.
package chtest

import (
	"context"
	"crypto/rand"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/crowsnest-siem/crowsnest/daemon/config"
	"github.com/crowsnest-siem/crowsnest/sinks/clickhouse"
)

// EnvURL is the variable naming the test server.
const EnvURL = "CROWSNEST_TEST_CLICKHOUSE_URL"

// URL returns the test server's URL, or skips the test.
func URL(tb testing.TB) string {
	tb.Helper()
	u := os.Getenv(EnvURL)
	if u == "" {
		tb.Skipf("%s is not set: no ClickHouse to test against (make services-up, then eval \"$(bash deploy/dev/services.sh env)\"; make test does both)", EnvURL)
	}
	return u
}

// Config returns a sink config for the test server and a database of the
// test's own (cn_test_<random>), not created yet: the sink creates it. The
// database is dropped when the test ends.
func Config(tb testing.TB) clickhouse.Config {
	tb.Helper()
	raw := URL(tb)
	u, err := url.Parse(raw)
	if err != nil {
		tb.Fatalf("%s: %v", EnvURL, err)
	}
	cfg := clickhouse.NewDefaultConfig()
	if u.User != nil {
		cfg.Username = u.User.Username()
		if pw, ok := u.User.Password(); ok {
			cfg.Password = config.Secret(pw)
		}
		u.User = nil
	}
	cfg.URL = u.String()
	cfg.Database = "cn_test_" + randomName()
	cfg.DialTimeout = 5 * time.Second
	cfg.ReadTimeout = time.Minute
	tb.Cleanup(func() { drop(tb, cfg) })
	return cfg
}

// Admin opens a connection to the server's default database, closed when
// the test ends.
func Admin(tb testing.TB, cfg clickhouse.Config) driver.Conn {
	tb.Helper()
	cfg.Database = "default"
	return Conn(tb, cfg)
}

// Conn opens a connection to cfg's database, closed when the test ends.
func Conn(tb testing.TB, cfg clickhouse.Config) driver.Conn {
	tb.Helper()
	conn, err := clickhouse.Open(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := conn.Close(); err != nil {
			tb.Logf("close: %v", err)
		}
	})
	return conn
}

// CreateDatabase creates cfg's database.
func CreateDatabase(tb testing.TB, cfg clickhouse.Config) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// cfg.Database passed clickhouse.Config.Validate: a plain identifier.
	if err := Admin(tb, cfg).Exec(ctx, "CREATE DATABASE IF NOT EXISTS "+cfg.Database); err != nil {
		tb.Fatalf("create database %s: %v", cfg.Database, err)
	}
}

func drop(tb testing.TB, cfg clickhouse.Config) {
	db := cfg.Database
	cfg.Database = "default"
	conn, err := clickhouse.Open(cfg)
	if err != nil {
		tb.Logf("drop test database %s: %v", db, err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+db+" SYNC"); err != nil {
		tb.Logf("drop test database %s: %v", db, err)
	}
	if err := conn.Close(); err != nil {
		tb.Logf("close: %v", err)
	}
}

// randomName is a random identifier-safe suffix.
func randomName() string { return strings.ToLower(rand.Text()[:12]) }
