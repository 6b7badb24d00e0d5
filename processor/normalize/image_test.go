package normalize_test

import (
	"fmt"
	"testing"

	"github.com/crowsnest-siem/crowsnest/processor/normalize"
	"github.com/crowsnest-siem/crowsnest/schemas"
)

func TestParseImage(t *testing.T) {
	const dgst = "sha256:4cb2b9019f1757be8482419002cb7afe028fdba35d47958829e4cfeaf6246d80"
	tests := []struct {
		in      string
		want    normalize.ImageRef
		wantErr bool
	}{
		{in: "nginx", want: normalize.ImageRef{Registry: "docker.io", Repository: "library/nginx"}},
		{in: "nginx:1.27", want: normalize.ImageRef{Registry: "docker.io", Repository: "library/nginx", Tag: "1.27"}},
		{in: "bitnami/redis:7.2", want: normalize.ImageRef{Registry: "docker.io", Repository: "bitnami/redis", Tag: "7.2"}},
		{in: "docker.io/library/busybox:1.36", want: normalize.ImageRef{Registry: "docker.io", Repository: "library/busybox", Tag: "1.36"}},
		{in: "index.docker.io/library/busybox", want: normalize.ImageRef{Registry: "docker.io", Repository: "library/busybox"}},
		{in: "registry.k8s.io/kube-proxy:v1.31.2", want: normalize.ImageRef{Registry: "registry.k8s.io", Repository: "kube-proxy", Tag: "v1.31.2"}},
		{in: "localhost:5000/team/app@" + dgst, want: normalize.ImageRef{Registry: "localhost:5000", Repository: "team/app", Digest: dgst}},
		{in: "quay.io/prometheus/node-exporter:v1.8.2@" + dgst, want: normalize.ImageRef{Registry: "quay.io", Repository: "prometheus/node-exporter", Tag: "v1.8.2", Digest: dgst}},
		{in: dgst, want: normalize.ImageRef{Digest: dgst}},
		{in: "", wantErr: true},
		{in: "docker.io/Library/nginx", wantErr: true}, // repositories are lowercase
		{in: "a b", wantErr: true},
	}
	for _, tt := range tests {
		got, err := normalize.ParseImage(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseImage(%q) = %+v, %v; want %+v, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestTrustedRegistries(t *testing.T) {
	tr := normalize.TrustedRegistries{"registry.k8s.io", "docker.io/library", "ghcr.io/crowsnest-siem/", "index.docker.io/bitnami"}
	tests := []struct {
		image string
		want  bool
	}{
		{"registry.k8s.io/pause:3.10", true},
		{"registry.k8s.io/sig-storage/csi-provisioner:v5.0.1", true},
		{"nginx:1.27", true},                           // docker.io/library/nginx
		{"docker.io/library/busybox", true},            // the prefix itself
		{"bitnami/redis", true},                        // index.docker.io normalizes to docker.io
		{"docker.io/libraryx/evil", false},             // prefixes match whole path segments
		{"ghcr.io/crowsnest-siem/processor:1.0", true}, // trailing slash in the entry
		{"ghcr.io/crowsnest-siem-evil/x", false},       // ... and still segment-bound
		{"ghcr.io/attacker/toolbox:latest", false},     // other repositories on the host
		{"registry.k8s.io.evil.example/pause", false},  // host compared exactly
		{"evil.example/registry.k8s.io/pause", false},  // not a prefix of the whole string
		{"docker.io/library/Nginx", false},             // unparsable: never trusted
		{"docker.io/library/a b", false},
	}
	for _, tt := range tests {
		if got := tr.TrustsImage(tt.image); got != tt.want {
			t.Errorf("TrustsImage(%q) = %v, want %v", tt.image, got, tt.want)
		}
	}
}

func TestFillImage(t *testing.T) {
	img := schemas.ContainerImage{Name: "ghcr.io/org/app:2.0"}
	normalize.FillImage(&img)
	if img.Registry != "ghcr.io" || img.Repository != "org/app" || len(img.Tag) != 1 || img.Tag[0] != "2.0" {
		t.Errorf("FillImage: %+v", img)
	}
	keep := schemas.ContainerImage{Name: "not a reference"}
	normalize.FillImage(&keep)
	if keep.Registry != "" || keep.Name != "not a reference" {
		t.Errorf("an unparsable name must be kept as is: %+v", keep)
	}
}

func TestImageCacheBounded(t *testing.T) {
	n := newNormalizer(t, normalize.NewDefaultConfig())
	var ev schemas.Event
	// Distinct attacker-chosen image names: the cache stops growing, parsing
	// keeps working.
	for i := 0; i < 5000; i++ {
		data := fmt.Sprintf(`{"output":"x","rule":"r","priority":"Notice","output_fields":{"container.id":"abc","container.image":"evil.example/img%d:v1"}}`, i)
		if err := n.Normalize(&normalize.Record{Source: "falco", Data: []byte(data)}, &ev); err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf("img%d", i); ev.Container.Image.Repository != want || ev.Container.Image.Registry != "evil.example" {
			t.Fatalf("image %d: %+v", i, ev.Container.Image)
		}
	}
}
