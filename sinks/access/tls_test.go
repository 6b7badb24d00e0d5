package access_test

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/crowsnest-siem/crowsnest/daemon/config"
	chsink "github.com/crowsnest-siem/crowsnest/sinks/clickhouse"
	"github.com/crowsnest-siem/crowsnest/sinks/sink"
	"github.com/crowsnest-siem/crowsnest/sinks/sink/sinktest"
)

// The ClickHouse sink over HTTPS with its CA pinned (tls.ca_file) writes;
// trusting another CA, or the system roots, it refuses the server. The
// engine is the development one behind a TLS-terminating proxy (as a load
// balancer in front of ClickHouse would be) with a certificate the test's
// CA signed.
func TestClickHouseSinkTLSPinning(t *testing.T) {
	target, err := url.Parse(engineURL(t))
	if err != nil {
		t.Fatal(err)
	}
	user, password := "", ""
	if target.User != nil {
		user = target.User.Username()
		password, _ = target.User.Password()
		target.User = nil
	}
	ca, caKey := newCA(t, "crowsnest test CA")
	wrongCA, _ := newCA(t, "crowsnest wrong CA")
	leaf, leafKey := newLeaf(t, ca, caKey)
	cert, err := tls.X509KeyPair(pemCert(leaf), leafKey)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httptest.NewUnstartedServer(httputil.NewSingleHostReverseProxy(target))
	proxy.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	proxy.StartTLS()
	t.Cleanup(proxy.Close)
	dir := t.TempDir()
	caFile, wrongFile := filepath.Join(dir, "ca.crt"), filepath.Join(dir, "wrong.crt")
	write(t, caFile, pemCert(ca.Raw))
	write(t, wrongFile, pemCert(wrongCA.Raw))

	db := "cn_access_tls_" + strings.ToLower(rand.Text()[:8])
	t.Cleanup(func() {
		if err := connect(t, target.String(), "default", user, password).Exec(context.Background(), "DROP DATABASE IF EXISTS "+db+" SYNC"); err != nil {
			t.Logf("drop %s: %v", db, err)
		}
	})
	ctx := testCtx(t)
	write1 := func(caFile, id string) error {
		cfg := chsink.NewDefaultConfig()
		cfg.URL, cfg.Database = proxy.URL, db // https://127.0.0.1:port
		if user != "" {
			cfg.Username, cfg.Password = user, config.Secret(password)
		}
		cfg.TLS.CAFile = caFile
		s, err := chsink.New(cfg, sinktest.Settings(t))
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = s.Close(context.Background()) }()
		return s.WriteBatch(ctx, []sink.Record{record(t, sink.KindEvents, id, "payments")})
	}
	if err := write1(caFile, "tls-1"); err != nil {
		t.Fatalf("pinned CA: %v", err)
	}
	for name, f := range map[string]string{"another CA": wrongFile, "system roots": ""} {
		err := write1(f, "tls-"+name)
		if err == nil || !strings.Contains(err.Error(), "certificate") {
			t.Errorf("%s: %v, want a certificate error", name, err)
		}
	}
	var n uint64
	if err := connect(t, target.String(), db, user, password).QueryRow(ctx, "SELECT count() FROM events").Scan(&n); err != nil || n != 1 {
		t.Errorf("events stored: %d, %v; want 1 (only the pinned write)", n, err)
	}
}
