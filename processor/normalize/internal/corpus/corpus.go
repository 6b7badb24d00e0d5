package corpus

import (
	"os"
	"path/filepath"
	"testing"
)

// EnvVar overrides where the corpora are.
const EnvVar = "CROWSNEST_CORPORA"

// Path returns the absolute path of rel inside the corpora, or skips tb when
// the corpora or that file are missing.
func Path(tb testing.TB, rel string) string {
	tb.Helper()
	dir := Dir(tb)
	p := filepath.Join(dir, filepath.FromSlash(rel))
	if _, err := os.Stat(p); err != nil {
		tb.Skipf("corpus file %s absent (%v): skipping; the corpora are described in shared/corpora/SOURCES.md", p, err)
	}
	return p
}

// Dir returns the corpora directory or skips tb. Without $CROWSNEST_CORPORA
// it looks for shared/corpora in the directories above the test's package
// (../../../../shared/corpora from a mapper package).
func Dir(tb testing.TB) string {
	tb.Helper()
	if d := os.Getenv(EnvVar); d != "" {
		if fi, err := os.Stat(d); err == nil && fi.IsDir() {
			return d
		}
		tb.Skipf("$%s=%s is not a directory: skipping corpus test", EnvVar, d)
	}
	wd, err := os.Getwd()
	if err != nil {
		tb.Skipf("no working directory (%v): skipping corpus test", err)
	}
	for d := wd; ; {
		c := filepath.Join(d, "shared", "corpora")
		if fi, err := os.Stat(c); err == nil && fi.IsDir() {
			return c
		}
		parent := filepath.Dir(d)
		if parent == d {
			break
		}
		d = parent
	}
	tb.Skipf("corpora not found (no shared/corpora above %s and $%s unset): skipping corpus test", wd, EnvVar)
	return ""
}
