package auditd_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/crowsnest-siem/crowsnest/processor/normalize"
	"github.com/crowsnest-siem/crowsnest/processor/normalize/auditd"
	"github.com/crowsnest-siem/crowsnest/processor/normalize/internal/golden"
)

// BenchmarkAuditd: full mapping plus the AppendJSON encode of an execve
// event (7 records) and a single-record login.
func BenchmarkAuditd(b *testing.B) {
	n := newNormalizer(b, normalize.NewDefaultConfig())
	for _, name := range []string{"execve_curl_metadata", "user_login_success"} {
		in, err := os.ReadFile(filepath.Join("testdata", name+inputSuffix))
		if err != nil {
			b.Fatal(err)
		}
		b.Run(name, func(b *testing.B) {
			golden.Bench(b, n, auditd.Source, bytes.TrimRight(in, "\n"))
		})
	}
}
