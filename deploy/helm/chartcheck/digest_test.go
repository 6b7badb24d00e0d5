package chartcheck

import (
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// TestImageDigests: an image with a digest renders as repository@sha256:...
// (the tag ignored: a tag can be moved, a digest cannot), one without as
// repository:tag, and NOTES.txt names exactly the images still unpinned.
func TestImageDigests(t *testing.T) {
	const (
		c = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
		p = "sha256:2222222222222222222222222222222222222222222222222222222222222222"
		s = "sha256:3333333333333333333333333333333333333333333333333333333333333333"
		n = "sha256:4444444444444444444444444444444444444444444444444444444444444444"
	)
	tests := []struct {
		name, values string
		images       []string // every one must be rendered
		warn         string   // the NOTES.txt warning, "" for none
	}{
		{"all pinned", `
images:
  collector: {tag: "9.9.9", digest: "` + c + `"}
  processor: {digest: "` + p + `"}
  sink: {digest: "` + s + `"}
nats: {image: {digest: "` + n + `"}}
`, []string{"ghcr.io/crowsnest-siem/crowsnest-collector@" + c, "ghcr.io/crowsnest-siem/crowsnest-processor@" + p,
			"ghcr.io/crowsnest-siem/crowsnest-sink@" + s, "docker.io/library/nats@" + n}, ""},
		{"one unpinned", `
images:
  collector: {digest: "` + c + `"}
  processor: {digest: "` + p + `"}
nats: {image: {digest: "` + n + `"}}
`, []string{"ghcr.io/crowsnest-siem/crowsnest-collector@" + c, "ghcr.io/crowsnest-siem/crowsnest-sink:"},
			"WARNING: images.sink referenced by tag"},
		{"defaults", ``, []string{"docker.io/library/nats:2.15.2"},
			"WARNING: images.collector, images.processor, images.sink, nats.image referenced by tag"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var vals map[string]any
			if err := yaml.Unmarshal([]byte(tt.values), &vals); err != nil {
				t.Fatal(err)
			}
			ms, err := Render(chartDir, rel, vals)
			if err != nil {
				t.Fatal(err)
			}
			var all strings.Builder
			for _, m := range ms {
				all.WriteString(m.Body)
			}
			for _, img := range tt.images {
				if !strings.Contains(all.String(), "image: "+img) {
					t.Errorf("no container image %s rendered", img)
				}
			}
			if strings.Contains(all.String(), "9.9.9") {
				t.Error("the tag was rendered beside a digest")
			}
			notes, err := RenderNotes(chartDir, rel, vals)
			if err != nil {
				t.Fatal(err)
			}
			if tt.warn == "" && strings.Contains(notes, "referenced by tag") {
				t.Errorf("NOTES.txt warns with every image pinned:\n%s", notes)
			}
			if tt.warn != "" && !strings.Contains(notes, tt.warn) {
				t.Errorf("NOTES.txt lacks %q:\n%s", tt.warn, notes)
			}
		})
	}
}
