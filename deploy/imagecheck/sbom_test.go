package imagecheck

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// sbomDeps are modules each image's SBOM must list: the ones that carry the
// image's job, so an SBOM that lost them (wrong package, wrong module)
// fails, not just an empty one.
var sbomDeps = map[string][]string{
	"Dockerfile.collector": {"github.com/nats-io/nats.go"},
	"Dockerfile.processor": {"github.com/nats-io/nats.go", "github.com/tidwall/gjson"},
	"Dockerfile.sink":      {"github.com/nats-io/nats.go", "github.com/ClickHouse/clickhouse-go/v2", "github.com/elastic/go-elasticsearch/v8", "github.com/tidwall/gjson"},
	"Dockerfile.crowsnest": {"github.com/nats-io/nats.go", "github.com/ClickHouse/clickhouse-go/v2", "github.com/elastic/go-elasticsearch/v8", "github.com/tidwall/gjson"},
}

// cdxBOM is the part of a CycloneDX 1.6 JSON document the checks read.
type cdxBOM struct {
	BOMFormat   string `json:"bomFormat"`
	SpecVersion string `json:"specVersion"`
	Metadata    struct {
		Component cdxComponent `json:"component"`
	} `json:"metadata"`
	Components   []cdxComponent `json:"components"`
	Dependencies []struct {
		Ref       string   `json:"ref"`
		DependsOn []string `json:"dependsOn"`
	} `json:"dependencies"`
}

type cdxComponent struct {
	BOMRef  string `json:"bom-ref"`
	Type    string `json:"type"`
	Name    string `json:"name"`
	Version string `json:"version"`
	PURL    string `json:"purl"`
}

// checkSBOM reports how an SBOM fails to describe the image built from img:
// not CycloneDX, a main component other than the Dockerfile's package,
// a listed module without a version (workspace modules excepted: they are
// built from the same tree), a required module or the standard library
// missing, or a standard library other than the image's Go release.
func checkSBOM(data []byte, img *Image, required []string) error {
	var bom cdxBOM
	if err := json.Unmarshal(data, &bom); err != nil {
		return fmt.Errorf("not JSON: %w", err)
	}
	if bom.BOMFormat != "CycloneDX" || !strings.HasPrefix(bom.SpecVersion, "1.") {
		return fmt.Errorf("bomFormat %q specVersion %q: want CycloneDX 1.x", bom.BOMFormat, bom.SpecVersion)
	}
	const prefix = "github.com/crowsnest-siem/crowsnest/"
	pkg := strings.TrimPrefix(img.Package, "./")
	main := bom.Metadata.Component
	module, sub, _ := strings.Cut(pkg, "/cmd/")
	wantFragment := ""
	if sub != "" {
		wantFragment = "#cmd/" + sub
	}
	if main.Name != prefix+module || main.Type != "application" {
		return fmt.Errorf("main component %s (%s), want application %s", main.Name, main.Type, prefix+module)
	}
	if _, frag, _ := strings.Cut(main.PURL, "#"); "#"+frag != wantFragment && !(frag == "" && wantFragment == "") {
		return fmt.Errorf("main component purl %s: want the package %s", main.PURL, pkg)
	}
	have := map[string]bool{}
	for _, c := range bom.Components {
		have[c.Name] = true
		if c.Name == "std" && img.Toolchain() != "" && c.Version != img.Toolchain() {
			return fmt.Errorf("standard library %s, but the image builds with %s", c.Version, img.Toolchain())
		}
		if c.Version == "" && !strings.HasPrefix(c.Name, prefix) {
			return fmt.Errorf("component %s has no version", c.Name)
		}
	}
	for _, r := range append([]string{"std"}, required...) {
		if !have[r] {
			return fmt.Errorf("does not list %s (%d components)", r, len(bom.Components))
		}
	}
	if len(bom.Dependencies) == 0 {
		return fmt.Errorf("no dependency graph")
	}
	return nil
}

// TestSBOMs checks the SBOMs `make sbom` wrote into $CROWSNEST_SBOM_DIR, one
// <image>.cdx.json per Dockerfile, against what the Dockerfile builds.
func TestSBOMs(t *testing.T) {
	dir := os.Getenv("CROWSNEST_SBOM_DIR")
	if dir == "" {
		t.Skip("CROWSNEST_SBOM_DIR unset: run make sbom, which generates the SBOMs and then this test")
	}
	for _, im := range images {
		t.Run(im.file, func(t *testing.T) {
			img, err := Lint(im.file, readDockerfile(t, im.file))
			if err != nil {
				t.Fatal(err)
			}
			name := strings.TrimPrefix(im.file, "Dockerfile.") + ".cdx.json"
			data, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil {
				t.Fatal(err)
			}
			if err := checkSBOM(data, img, sbomDeps[im.file]); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
		})
	}
}

// checkSBOM must refuse SBOMs that miss the point, or TestSBOMs proves
// nothing.
func TestCheckSBOMRejects(t *testing.T) {
	img := &Image{Package: "./sinks/cmd/crowsnest-sink", GoEnv: []string{"GOTOOLCHAIN=go1.26.8"}}
	good := `{"bomFormat":"CycloneDX","specVersion":"1.6",
	 "metadata":{"component":{"type":"application","name":"github.com/crowsnest-siem/crowsnest/sinks","purl":"pkg:golang/github.com/crowsnest-siem/crowsnest/sinks@v0?type=module#cmd/crowsnest-sink"}},
	 "components":[{"name":"std","version":"go1.26.8"},{"name":"github.com/tidwall/gjson","version":"v1.20.2"},{"name":"github.com/crowsnest-siem/crowsnest/bus"}],
	 "dependencies":[{"ref":"x","dependsOn":["y"]}]}`
	if err := checkSBOM([]byte(good), img, []string{"github.com/tidwall/gjson"}); err != nil {
		t.Fatalf("good SBOM refused: %v", err)
	}
	tests := []struct{ name, old, new, want string }{
		{"not JSON", `{"bomFormat"`, `{bomFormat`, "not JSON"},
		{"SPDX", `"CycloneDX"`, `"SPDX"`, "want CycloneDX"},
		{"other module", `crowsnest/sinks","purl"`, `crowsnest/cli","purl"`, "main component"},
		{"other main package", `#cmd/crowsnest-sink`, `#cmd/other`, "want the package"},
		{"no std", `{"name":"std","version":"go1.26.8"},`, ``, "does not list std"},
		{"missing dependency", `"github.com/tidwall/gjson","version"`, `"github.com/tidwall/match","version"`, "does not list github.com/tidwall/gjson"},
		{"unversioned third party", `"version":"v1.20.2"`, `"version":""`, "has no version"},
		{"other Go release", `"version":"go1.26.8"`, `"version":"go1.26.7"`, "but the image builds with go1.26.8"},
		{"no graph", `"dependencies":[{"ref":"x","dependsOn":["y"]}]`, `"dependencies":[]`, "no dependency graph"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bad := strings.Replace(good, tt.old, tt.new, 1)
			if bad == good {
				t.Fatalf("replacing %q changed nothing", tt.old)
			}
			err := checkSBOM([]byte(bad), img, []string{"github.com/tidwall/gjson"})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
}
