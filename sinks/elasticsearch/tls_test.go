package elasticsearch

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The server certificate is trusted by the CA file or by its fingerprint,
// and by nothing else.
func TestTLSTrust(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	defer srv.Close()
	cert := srv.Certificate()
	sum := sha256.Sum256(cert.Raw)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	colons := strings.ToUpper(hex.EncodeToString(sum[:]))
	var b strings.Builder
	for i := 0; i < len(colons); i += 2 {
		if i > 0 {
			b.WriteByte(':')
		}
		b.WriteString(colons[i : i+2])
	}
	wrong := sha256.Sum256([]byte("another certificate"))
	for _, tc := range []struct {
		name string
		cfg  TLSConfig
		ok   bool
	}{
		{"system roots", TLSConfig{}, false},
		{"ca file", TLSConfig{CAFile: caFile}, true},
		{"fingerprint", TLSConfig{CAFingerprint: hex.EncodeToString(sum[:])}, true},
		{"fingerprint with colons", TLSConfig{CAFingerprint: b.String()}, true},
		{"wrong fingerprint", TLSConfig{CAFingerprint: hex.EncodeToString(wrong[:])}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc2, err := tlsConfig(tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			c := &http.Client{Transport: &http.Transport{TLSClientConfig: tc2}}
			res, err := c.Get(srv.URL)
			if err == nil {
				res.Body.Close()
			}
			if (err == nil) != tc.ok {
				t.Fatalf("GET = %v, want success %v", err, tc.ok)
			}
		})
	}
	if _, err := tlsConfig(TLSConfig{CAFile: filepath.Join(t.TempDir(), "missing.pem")}); err == nil {
		t.Error("a missing CA file was accepted")
	}
}
