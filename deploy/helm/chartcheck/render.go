package chartcheck

import (
	"fmt"
	"path"
	"sort"
	"strings"

	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
)

// Release names the release a chart is rendered for.
type Release struct {
	Name      string
	Namespace string
	// KubeVersion is the cluster version the chart is rendered for, as
	// `helm template --kube-version` takes it; empty: DefaultKubeVersion.
	KubeVersion string
}

// DefaultKubeVersion is the Kubernetes version charts are rendered for when
// Release.KubeVersion is empty. Helm's library default (v1.20) is older than
// any supported cluster; the helm binary gets a newer one at link time.
const DefaultKubeVersion = "v1.33.0"

// Manifest is one YAML document of the rendered chart.
type Manifest struct {
	// Source is the template it came from and its index there
	// ("crowsnest/templates/processor.yaml#2").
	Source string
	Body   string
}

// Render renders the chart in dir with vals over its values.yaml, as
// `helm template` does: the chart's kubeVersion constraint is checked
// against Helm's default capabilities, the merged values against
// values.schema.json, and templates render in strict mode (a reference to a
// missing value is an error, not an empty string). It returns every
// non-empty document, in a stable order.
func Render(dir string, rel Release, vals map[string]any) ([]Manifest, error) {
	files, err := renderFiles(dir, rel, vals)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	var out []Manifest
	for _, name := range names {
		if path.Base(name) == "NOTES.txt" {
			// Rendered (so a broken NOTES.txt fails here as at install), not a manifest.
			continue
		}
		// Partials are not manifests.
		if strings.HasPrefix(path.Base(name), "_") {
			continue
		}
		for i, doc := range splitDocuments(files[name]) {
			out = append(out, Manifest{Source: fmt.Sprintf("%s#%d", name, i), Body: doc})
		}
	}
	return out, nil
}

// RenderNotes renders the chart as Render does and returns NOTES.txt, what
// `helm install` prints to the operator.
func RenderNotes(dir string, rel Release, vals map[string]any) (string, error) {
	files, err := renderFiles(dir, rel, vals)
	if err != nil {
		return "", err
	}
	for name, body := range files {
		if path.Base(name) == "NOTES.txt" {
			return body, nil
		}
	}
	return "", fmt.Errorf("chart %s has no NOTES.txt", dir)
}

func renderFiles(dir string, rel Release, vals map[string]any) (map[string]string, error) {
	ch, err := loader.Load(dir)
	if err != nil {
		return nil, fmt.Errorf("load chart %s: %w", dir, err)
	}
	caps := chartutil.DefaultCapabilities.Copy()
	kubeVersion := rel.KubeVersion
	if kubeVersion == "" {
		kubeVersion = DefaultKubeVersion
	}
	kv, err := chartutil.ParseKubeVersion(kubeVersion)
	if err != nil {
		return nil, fmt.Errorf("kube version: %w", err)
	}
	caps.KubeVersion = *kv
	if kv := ch.Metadata.KubeVersion; kv != "" && !chartutil.IsCompatibleRange(kv, caps.KubeVersion.String()) {
		return nil, fmt.Errorf("chart requires kubeVersion %s, capabilities have %s", kv, caps.KubeVersion.String())
	}
	opts := chartutil.ReleaseOptions{Name: rel.Name, Namespace: rel.Namespace, Revision: 1, IsInstall: true}
	values, err := chartutil.ToRenderValues(ch, vals, opts, caps)
	if err != nil {
		return nil, fmt.Errorf("values: %w", err)
	}
	files, err := engine.Engine{Strict: true}.Render(ch, values)
	if err != nil {
		return nil, fmt.Errorf("render: %w", err)
	}
	return files, nil
}

// splitDocuments splits a rendered template at its "---" separator lines
// (indented ones too, as Helm's own splitter takes them), dropping documents
// with nothing but whitespace and comments.
func splitDocuments(s string) []string {
	var docs []string
	var cur []string
	flush := func() {
		doc := strings.Join(cur, "\n")
		cur = cur[:0]
		for _, line := range strings.Split(doc, "\n") {
			if t := strings.TrimSpace(line); t != "" && !strings.HasPrefix(t, "#") {
				docs = append(docs, doc)
				return
			}
		}
	}
	for _, line := range strings.Split(s, "\n") {
		if strings.TrimSpace(line) == "---" {
			flush()
			continue
		}
		cur = append(cur, line)
	}
	flush()
	return docs
}
