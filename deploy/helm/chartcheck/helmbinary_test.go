package chartcheck

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestHelmBinaryAgrees renders every value set with a helm binary too
// (CHARTCHECK_HELM, e.g. $(scripts/tools.sh helm)) and requires the same
// documents as the in-process render, and the same refusals of bad values,
// and `helm lint --strict` to pass:
// the library route checks what `helm template`/`helm install` would do.
func TestHelmBinaryAgrees(t *testing.T) {
	helm := os.Getenv("CHARTCHECK_HELM")
	if helm == "" {
		t.Skip("set CHARTCHECK_HELM to a helm binary ($(scripts/tools.sh helm)) to compare its render with the library's")
	}
	run := func(t *testing.T, values string) (string, error) {
		t.Helper()
		f := filepath.Join(t.TempDir(), "values.yaml")
		if err := os.WriteFile(f, []byte(values), 0o600); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(helm, "template", rel.Name, chartDir, "--namespace", rel.Namespace, "--kube-version", DefaultKubeVersion, "-f", f)
		cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+t.TempDir(), "HELM_CONFIG_HOME="+t.TempDir(), "HELM_DATA_HOME="+t.TempDir())
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	normalize := func(docs []string) []string {
		var out []string
		for _, d := range docs {
			var lines []string
			for _, l := range strings.Split(d, "\n") {
				if tl := strings.TrimSpace(l); tl != "" && !strings.HasPrefix(tl, "# Source:") {
					lines = append(lines, strings.TrimRight(l, " "))
				}
			}
			out = append(out, strings.Join(lines, "\n"))
		}
		slices.Sort(out)
		return out
	}
	for name, values := range valueSets {
		t.Run(name, func(t *testing.T) {
			out, err := run(t, values)
			if err != nil {
				t.Fatalf("helm template: %v\n%s", err, out)
			}
			var lib []string
			for _, m := range render(t, values) {
				lib = append(lib, m.Body)
			}
			got, want := normalize(splitDocuments(out)), normalize(lib)
			if len(got) != len(want) {
				t.Fatalf("helm rendered %d documents, the library %d", len(got), len(want))
			}
			for i := range got {
				if got[i] != want[i] {
					t.Errorf("document differs:\nhelm:\n%s\nlibrary:\n%s", got[i], want[i])
				}
			}
		})
	}
	t.Run("helm lint --strict", func(t *testing.T) {
		cmd := exec.Command(helm, "lint", chartDir, "--strict")
		cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+t.TempDir(), "HELM_CONFIG_HOME="+t.TempDir(), "HELM_DATA_HOME="+t.TempDir())
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("helm lint: %v\n%s", err, out)
		}
	})
	t.Run("bad values refused", func(t *testing.T) {
		for _, values := range []string{`podSecurity: {runAsUser: 0}`, `processor: {replcas: 3}`, `nats: {enabled: false, url: "nats://n:4222"}`} {
			if out, err := run(t, values); err == nil {
				t.Errorf("helm template accepted %s:\n%.300s", values, out)
			}
		}
	})
}
