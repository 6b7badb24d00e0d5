package enrich_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/crowsnest-siem/crowsnest/processor/enrich"
	"github.com/crowsnest-siem/crowsnest/schemas"
)

// samplesDir is the bundled replay sample (collectors/replay/samples): five
// minutes of one small cluster in the sources' formats.
const samplesDir = "../../collectors/replay/samples"

type sample struct {
	source string
	raw    []byte
}

func readSamples(t *testing.T) []sample {
	t.Helper()
	var out []sample
	for _, src := range []string{"k8s_audit", "falco", "tetragon"} {
		b, err := os.ReadFile(filepath.Join(samplesDir, src+".jsonl"))
		if err != nil {
			t.Skipf("replay samples not found (%v)", err)
		}
		sc := bufio.NewScanner(bytes.NewReader(b))
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			if l := bytes.TrimSpace(sc.Bytes()); len(l) > 0 {
				out = append(out, sample{src, append([]byte(nil), l...)})
			}
		}
	}
	return out
}

// find returns the first sample of source whose text holds every marker.
func find(t *testing.T, samples []sample, source string, markers ...string) []byte {
	t.Helper()
	for _, s := range samples {
		if s.source != source {
			continue
		}
		ok := true
		for _, m := range markers {
			ok = ok && bytes.Contains(s.raw, []byte(m))
		}
		if ok {
			return s.raw
		}
	}
	t.Fatalf("no %s sample with %q", source, markers)
	return nil
}

// strip removes keys from a sample's JSON (a source that lacks them: Falco
// without its Kubernetes and container-image metadata, Tetragon without
// access to the Kubernetes API).
func strip(t *testing.T, raw []byte, object string, keys ...string) string {
	t.Helper()
	var v map[string]any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	m := v
	for part := range strings.SplitSeq(object, ".") {
		if part != "" {
			m = m[part].(map[string]any)
		}
	}
	for _, k := range keys {
		if _, ok := m[k]; !ok {
			t.Fatalf("sample has no %s.%s", object, k)
		}
		delete(m, k)
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestReplaySamples runs the bundled sample through the normalizer and the
// Enricher in event-time order, as the pipeline would see it.
func TestReplaySamples(t *testing.T) {
	samples := readSamples(t)
	n := normalizer(t)

	// The whole sample: its runtime events carry their own pods and images,
	// so enrichment must leave every one of them exactly as it was.
	t.Run("no event changes what it already says", func(t *testing.T) {
		e, _ := enrich.New(enrich.NewDefaultConfig())
		evs := make([]*schemas.Event, 0, len(samples))
		for _, s := range samples {
			evs = append(evs, event(t, n, s.source, string(s.raw)))
		}
		slices.SortStableFunc(evs, func(a, b *schemas.Event) int { return a.Timestamp.Compare(b.Timestamp) })
		for _, ev := range evs {
			before := string(ev.AppendJSON(nil))
			e.Enrich(ev)
			if ev.Container.ID != "" && ev.Orchestrator.Namespace != "" && ev.Container.Image.Name != "" {
				if after := string(ev.AppendJSON(nil)); after != before {
					t.Errorf("%s event %s changed:\n%s\n%s", ev.Crowsnest.Source, ev.Event.ID, before, after)
				}
			}
		}
		if c, p := e.Len(); c == 0 || p == 0 {
			t.Errorf("learned %d containers, %d pods from the sample", c, p)
		}
	})

	// dev/debug-tools: the audit pod create in the sample (09:03:10) names
	// its node and image; a Falco alert from its container that names only
	// the pod and container (no image fields) gains the image and node.
	t.Run("falco alert in debug-tools gains the image of the audit pod create", func(t *testing.T) {
		e, _ := enrich.New(enrich.NewDefaultConfig())
		e.Enrich(event(t, n, "k8s_audit", string(find(t, samples, "k8s_audit", `"verb":"create"`, `"name":"debug-tools"`, `"requestObject"`))))
		raw := strip(t, find(t, samples, "falco", `"k8s.pod.name":"debug-tools"`), "output_fields", "container.image.repository", "container.image.tag")
		ev := event(t, n, "falco", raw)
		ev.Host.Name = "" // as if Falco did not say where it runs
		if ev.Container.Image.Name != "" {
			t.Fatalf("stripping failed: %+v", ev.Container.Image)
		}
		e.Enrich(ev)
		if ev.Container.Image.Name != "docker.io/library/alpine:latest" || ev.Container.Image.Repository != "library/alpine" || ev.Host.Name != "worker-2" {
			t.Errorf("image %+v host %q", ev.Container.Image, ev.Host.Name)
		}
	})

	// shop/payments. The sample has no pod object for payments (it was
	// created before the five minutes start), so the kubelet's status patch
	// that would have named its container is the one written for these
	// tests (auditStatusPatch: RequestResponse, the sample's container id).
	// Falco's payments alert without its k8s and image fields, and
	// Tetragon's payments exec without its pod, gain both.
	t.Run("payments events gain namespace and image from the audit pod status", func(t *testing.T) {
		e, _ := enrich.New(enrich.NewDefaultConfig())
		for _, s := range samples {
			if s.source == "k8s_audit" {
				e.Enrich(event(t, n, s.source, string(s.raw)))
			}
		}
		e.Enrich(event(t, n, "k8s_audit", auditStatusPatch))

		falcoRaw := strip(t, find(t, samples, "falco", `"rule":"Terminal shell in container"`, `"k8s.pod.name":"payments-7d9f5c8b6-q4zrx"`),
			"output_fields", "k8s.ns.name", "k8s.pod.name", "container.image.repository", "container.image.tag")
		ev := event(t, n, "falco", falcoRaw)
		e.Enrich(ev)
		check(t, ev, want{"shop", paymentsPod, paymentsImage, "registry.shop.internal", "1.14.2", digest, "worker-1", "payments"})

		tetragonRaw := strip(t, find(t, samples, "tetragon", `"binary":"/bin/cat"`, `payments-7d9f5c8b6-q4zrx`), "process_exec.process", "pod")
		ev = event(t, n, "tetragon", tetragonRaw)
		e.Enrich(ev)
		check(t, ev, want{"shop", paymentsPod, paymentsImage, "registry.shop.internal", "1.14.2", digest, "worker-1", "payments"})
	})

	// Without any audit record, the sample's own Tetragon events (pod and
	// full id) teach the join for Falco's short ids.
	t.Run("falco alerts gain the pod from the sample's tetragon events", func(t *testing.T) {
		e, _ := enrich.New(enrich.NewDefaultConfig())
		for _, s := range samples {
			if s.source == "tetragon" {
				e.Enrich(event(t, n, s.source, string(s.raw)))
			}
		}
		raw := strip(t, find(t, samples, "falco", `"k8s.pod.name":"metrics-exporter-6c9b7d5f8-zt9kq"`),
			"output_fields", "k8s.ns.name", "k8s.pod.name", "container.image.repository", "container.image.tag")
		ev := event(t, n, "falco", raw)
		e.Enrich(ev)
		if ev.Orchestrator.Namespace != "dev" || ev.Orchestrator.Resource.Name != "metrics-exporter-6c9b7d5f8-zt9kq" ||
			ev.Container.Image.Name != "docker.io/minerfarm/node-exporter:latest" {
			t.Errorf("got %s/%s image %q", ev.Orchestrator.Namespace, ev.Orchestrator.Resource.Name, ev.Container.Image.Name)
		}
	})
}
