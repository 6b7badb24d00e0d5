package enrich_test

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/crowsnest-siem/crowsnest/processor/enrich"
	"github.com/crowsnest-siem/crowsnest/processor/normalize"
	"github.com/crowsnest-siem/crowsnest/processor/normalize/sources"
	"github.com/crowsnest-siem/crowsnest/processor/normalize/vouch"
	"github.com/crowsnest-siem/crowsnest/schemas"
)

// normalizer builds the processor's real normalizer, so the events here are
// the events the pipeline enriches.
func normalizer(tb testing.TB) *normalize.Normalizer {
	tb.Helper()
	cfg := normalize.NewDefaultConfig()
	reg, err := sources.NewRegistry(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	n, err := normalize.New(cfg, reg)
	if err != nil {
		tb.Fatal(err)
	}
	return n
}

// event normalizes one raw record of source into a fresh Event.
func event(tb testing.TB, n *normalize.Normalizer, source, raw string) *schemas.Event {
	tb.Helper()
	ev := new(schemas.Event)
	if err := n.Normalize(&normalize.Record{Source: source, Data: []byte(raw), Node: "worker-1"}, ev); err != nil {
		tb.Fatalf("%s: %v\n%s", source, err, raw)
	}
	return ev
}

const (
	paymentsID    = "06e93f41f884e998ffe84abdd3985f26f7dbe55fe67845ed56fcabdbe72aea5e"
	paymentsImage = "registry.shop.internal/payments:1.14.2"
	paymentsPod   = "payments-7d9f5c8b6-q4zrx"
	digest        = "sha256:4b1e2f8a9c3d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f"
)

// Raw records, written for these tests in each source's format.
var (
	// The kubelet's status patch once the container runs: it names the
	// container id (RequestResponse level keeps the patch).
	auditStatusPatch = `{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"RequestResponse","auditID":"5d0b1c6e-0f3e-4a52-9a55-11c2e1f3d9aa","stage":"ResponseComplete","requestURI":"/api/v1/namespaces/shop/pods/payments-7d9f5c8b6-q4zrx/status","verb":"patch","user":{"username":"system:node:worker-1","groups":["system:nodes"]},"sourceIPs":["10.0.1.11"],"objectRef":{"resource":"pods","namespace":"shop","name":"payments-7d9f5c8b6-q4zrx","apiVersion":"v1","subresource":"status"},"responseStatus":{"metadata":{},"code":200},"requestObject":{"metadata":{"uid":"5f0c2d4e-1b3a-4c5d-9e8f-7a6b5c4d3e2f"},"status":{"containerStatuses":[{"name":"payments","image":"registry.shop.internal/payments:1.14.2","imageID":"registry.shop.internal/payments@` + digest + `","containerID":"containerd://` + paymentsID + `","ready":true,"started":true,"state":{"running":{"startedAt":"2026-03-10T04:00:00Z"}}}]}},"requestReceivedTimestamp":"2026-03-10T04:00:01.000000Z","stageTimestamp":"2026-03-10T04:00:01.010000Z"}`
	auditPodCreate   = `{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Request","auditID":"6e1c2d7f-1a4f-4b63-8b66-22d3f2a4e0bb","stage":"ResponseComplete","requestURI":"/api/v1/namespaces/shop/pods","verb":"create","user":{"username":"system:serviceaccount:kube-system:replicaset-controller"},"sourceIPs":["10.0.0.10"],"objectRef":{"resource":"pods","namespace":"shop","name":"payments-7d9f5c8b6-q4zrx","apiVersion":"v1"},"responseStatus":{"metadata":{},"code":201},"requestObject":{"kind":"Pod","apiVersion":"v1","metadata":{"name":"payments-7d9f5c8b6-q4zrx","namespace":"shop"},"spec":{"nodeName":"worker-1","containers":[{"name":"payments","image":"registry.shop.internal/payments:1.14.2"},{"name":"envoy","image":"docker.io/envoyproxy/envoy:v1.30.1"}]}},"requestReceivedTimestamp":"2026-03-10T04:00:00.000000Z","stageTimestamp":"2026-03-10T04:00:00.010000Z"}`
	auditBinding     = `{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Request","auditID":"7f2d3e80-2b50-4c74-9c77-33e403b5f1cc","stage":"ResponseComplete","requestURI":"/api/v1/namespaces/dev/pods/late-pod/binding","verb":"create","user":{"username":"system:kube-scheduler"},"sourceIPs":["10.0.0.10"],"objectRef":{"resource":"pods","namespace":"dev","name":"late-pod","apiVersion":"v1","subresource":"binding"},"responseStatus":{"metadata":{},"code":201},"requestObject":{"kind":"Binding","apiVersion":"v1","metadata":{"name":"late-pod","namespace":"dev"},"target":{"kind":"Node","name":"worker-2"}},"requestReceivedTimestamp":"2026-03-10T04:00:00.000000Z","stageTimestamp":"2026-03-10T04:00:00.010000Z"}`
	auditLateCreate  = `{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Request","auditID":"8a3e4f91-3c61-4d85-8d88-44f514c6a2dd","stage":"ResponseComplete","requestURI":"/api/v1/namespaces/dev/pods","verb":"create","user":{"username":"alice"},"sourceIPs":["10.0.0.10"],"objectRef":{"resource":"pods","namespace":"dev","name":"late-pod","apiVersion":"v1"},"responseStatus":{"metadata":{},"code":201},"requestObject":{"kind":"Pod","apiVersion":"v1","metadata":{"name":"late-pod","namespace":"dev"},"spec":{"containers":[{"name":"app","image":"alpine:3.20"}]}},"requestReceivedTimestamp":"2026-03-10T04:00:00.000000Z","stageTimestamp":"2026-03-10T04:00:00.010000Z"}`
	auditForbidden   = strings.Replace(strings.Replace(auditStatusPatch, `"code":200`, `"code":403`, 1), "5d0b1c6e", "5d0b1c6f", 1)

	// Tetragon with its pod (the sample's shape) and without (no k8s API
	// access: only the 31-character docker id).
	tetragonWithPod = `{"process_exec":{"process":{"exec_id":"d29ya2VyLTE6MTA3MDUyMDAwMDAwMDoyMTg5Mw==","pid":21893,"uid":0,"binary":"/bin/sh","start_time":"2026-03-10T09:01:10.050000000Z","pod":{"namespace":"shop","name":"payments-7d9f5c8b6-q4zrx","container":{"id":"containerd://` + paymentsID + `","name":"payments","image":{"id":"registry.shop.internal/payments@` + digest + `","name":"registry.shop.internal/payments:1.14.2"}}},"docker":"06e93f41f884e998ffe84abdd3985f2"}},"node_name":"worker-1","time":"2026-03-10T09:01:10.052100000Z"}`
	tetragonBare    = `{"process_exec":{"process":{"exec_id":"d29ya2VyLTE6MTA3MDUyMDAwMDAwMDoyMTk0MA==","pid":21940,"uid":0,"binary":"/bin/cat","arguments":"/etc/shadow","start_time":"2026-03-10T09:01:24.110000000Z","docker":"06e93f41f884e998ffe84abdd3985f2"}},"time":"2026-03-10T09:01:24.113100000Z"}`
	// Falco without its k8s and image fields (no container plugin
	// metadata): the short id only.
	falcoBare = `{"uuid":"0c4a61f2-5d3b-4e2a-9f1c-8b7a6d5e4f30","output":"shell","priority":"Notice","rule":"Terminal shell in container","time":"2026-03-10T09:01:10.053300000Z","output_fields":{"container.id":"06e93f41f884","evt.type":"execve","proc.name":"sh","proc.exepath":"/bin/sh"},"source":"syscall","hostname":"worker-1"}`
	// Falco naming the pod and container but not the image.
	falcoNoImage = `{"uuid":"1d5b7203-6e4c-4f3b-8a2d-9c8b7e6f5a41","output":"shell","priority":"Notice","rule":"Terminal shell in container","time":"2026-03-10T09:01:11Z","output_fields":{"container.id":"aaaabbbbcccc","container.name":"envoy","k8s.ns.name":"shop","k8s.pod.name":"payments-7d9f5c8b6-q4zrx","evt.type":"execve"},"source":"syscall","hostname":"worker-1"}`
	// Falco claiming another pod for the payments container.
	falcoLiar = `{"uuid":"2e6c8314-7f5d-405c-9b3e-ad9c8f7a6b52","output":"x","priority":"Notice","rule":"r","time":"2026-03-10T09:01:12Z","output_fields":{"container.id":"06e93f41f884","container.image.repository":"evil/image","k8s.ns.name":"kube-system","k8s.pod.name":"coredns-1"},"source":"syscall","hostname":"worker-1"}`
	// procwatch names the container id and nothing else.
	procwatchExec = `{"kind":"process_exec","format":1,"time":"2026-03-10T09:01:10.050000000Z","host":{"hostname":"payments-7d9f5c8b6-q4zrx","boot_id":"b324a236"},"seen":"poll","process":{"pid":21893,"ppid":21877,"start_time":"2026-03-10T09:01:10.050000000Z","name":"curl","exe":"/usr/bin/curl","container_id":"` + paymentsID + `"}}`
	// A Docker engine event for a container Kubernetes started through the
	// engine.
	dockerK8s  = `{"Type":"container","Action":"start","Actor":{"ID":"ffffeeeeddddccccbbbbaaaa99998888777766665555444433332222111100ff","Attributes":{"image":"docker.io/library/redis:7.2","io.kubernetes.container.name":"redis","io.kubernetes.pod.name":"cache-0","io.kubernetes.pod.namespace":"data","name":"k8s_redis_cache-0_data_uid_0"}},"scope":"local","time":1773133200,"timeNano":1773133200000000000}`
	dockerExec = `{"Type":"container","Action":"exec_start: sh","Actor":{"ID":"ffffeeeeddddccccbbbbaaaa99998888777766665555444433332222111100ff","Attributes":{"execID":"e1"}},"scope":"local","time":1773133300,"timeNano":1773133300000000000}`
)

type want struct {
	namespace, pod, image, registry, tag, digest, node, name string
}

func check(t *testing.T, ev *schemas.Event, w want) {
	t.Helper()
	got := want{ev.Orchestrator.Namespace, ev.Orchestrator.Resource.Name, ev.Container.Image.Name, ev.Container.Image.Registry,
		first(ev.Container.Image.Tag), first(ev.Container.Image.Hash.All), ev.Host.Name, ev.Container.Name}
	if got != w {
		t.Errorf("got  %+v\nwant %+v", got, w)
	}
	if w.pod != "" && (ev.Orchestrator.Type != "kubernetes" || ev.Orchestrator.Resource.Type != "pods") {
		t.Errorf("orchestrator type %q resource type %q", ev.Orchestrator.Type, ev.Orchestrator.Resource.Type)
	}
}

func first(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}

// TestEnrich: each case feeds events in order; the last is checked.
func TestEnrich(t *testing.T) {
	n := normalizer(t)
	payments := want{"shop", paymentsPod, paymentsImage, "registry.shop.internal", "1.14.2", digest, "worker-1", "payments"}
	for _, c := range []struct {
		name   string
		events [][2]string // source, raw
		want   want
	}{
		{"falco short id gains pod and image from tetragon", [][2]string{{"tetragon", tetragonWithPod}, {"falco", falcoBare}}, payments},
		{"tetragon without pod gains them from the kubelet's status patch", [][2]string{{"k8s_audit", auditPodCreate}, {"k8s_audit", auditStatusPatch}, {"tetragon", tetragonBare}},
			want{"shop", paymentsPod, paymentsImage, "registry.shop.internal", "1.14.2", digest, "worker-1", "payments"}},
		{"falco short id gains them from the status patch", [][2]string{{"k8s_audit", auditStatusPatch}, {"falco", falcoBare}}, payments},
		{"procwatch full id gains them", [][2]string{{"k8s_audit", auditStatusPatch}, {"procwatch", procwatchExec}},
			want{"shop", paymentsPod, paymentsImage, "registry.shop.internal", "1.14.2", digest, "worker-1", "payments"}},
		{"pod spec gives the image by container name", [][2]string{{"k8s_audit", auditPodCreate}, {"falco", falcoNoImage}},
			want{"shop", paymentsPod, "docker.io/envoyproxy/envoy:v1.30.1", "docker.io", "v1.30.1", "", "worker-1", "envoy"}},
		{"the api server outranks a runtime's claim", [][2]string{{"k8s_audit", auditStatusPatch}, {"falco", falcoLiar}, {"tetragon", tetragonBare}},
			want{"shop", paymentsPod, paymentsImage, "registry.shop.internal", "1.14.2", digest, "worker-1", "payments"}},
		{"procwatch teaches nothing", [][2]string{{"procwatch", procwatchExec}, {"falco", falcoBare}}, want{node: "worker-1"}},
		{"a refused request teaches nothing", [][2]string{{"k8s_audit", auditForbidden}, {"falco", falcoBare}}, want{node: "worker-1"}},
		{"docker pod labels teach, a later exec gains them", [][2]string{{"docker", dockerK8s}, {"docker", dockerExec}},
			want{"data", "cache-0", "docker.io/library/redis:7.2", "docker.io", "7.2", "", "worker-1", "k8s_redis_cache-0_data_uid_0"}},
		{"nothing learned: nothing changes", [][2]string{{"falco", falcoBare}}, want{node: "worker-1"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			e, err := enrich.New(enrich.NewDefaultConfig())
			if err != nil {
				t.Fatal(err)
			}
			var last *schemas.Event
			for _, r := range c.events {
				last = event(t, n, r[0], r[1])
				e.Enrich(last)
			}
			check(t, last, c.want)
		})
	}
}

// TestNeverOverwrites: an event's own fields stay, whatever the cache says.
func TestNeverOverwrites(t *testing.T) {
	n := normalizer(t)
	e, _ := enrich.New(enrich.NewDefaultConfig())
	e.Enrich(event(t, n, "k8s_audit", auditStatusPatch))
	ev := event(t, n, "falco", falcoLiar)
	before := string(ev.AppendJSON(nil))
	e.Enrich(ev)
	if after := string(ev.AppendJSON(nil)); after != before {
		t.Errorf("an event with its own pod and image changed:\n%s\n%s", before, after)
	}
}

// TestBindingTeachesNode: the scheduler's binding gives a pod its node; the
// create (without a node) its image.
func TestBindingTeachesNode(t *testing.T) {
	n := normalizer(t)
	e, _ := enrich.New(enrich.NewDefaultConfig())
	e.Enrich(event(t, n, "k8s_audit", auditLateCreate))
	e.Enrich(event(t, n, "k8s_audit", auditBinding))
	ev := &schemas.Event{}
	ev.Crowsnest.Source = "falco"
	ev.Container.ID, ev.Container.Name = "0123456789ab", "app"
	ev.Orchestrator.Namespace, ev.Orchestrator.Resource.Name = "dev", "late-pod"
	e.Enrich(ev)
	if ev.Host.Name != "worker-2" || ev.Container.Image.Name != "alpine:3.20" || ev.Container.Image.Repository != "library/alpine" {
		t.Errorf("host %q image %+v", ev.Host.Name, ev.Container.Image)
	}
}

// TestBounds: entries expire after ttl and the least recently used go when
// full, each counted.
func TestBounds(t *testing.T) {
	n := normalizer(t)
	now := time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC)
	cfg := enrich.NewDefaultConfig()
	cfg.MaxEntries, cfg.TTL = 2, time.Hour
	e, _ := enrich.New(cfg, enrich.WithClock(func() time.Time { return now }))
	e.Enrich(event(t, n, "tetragon", tetragonWithPod)) // full and short id: both entries
	if c, _ := e.Len(); c != 2 {
		t.Fatalf("%d container entries, want 2", c)
	}
	ev := event(t, n, "falco", falcoBare)
	e.Enrich(ev)
	if ev.Orchestrator.Namespace != "shop" || e.Stats().Hits.Load() != 1 {
		t.Fatalf("hit expected: %q %d", ev.Orchestrator.Namespace, e.Stats().Hits.Load())
	}
	now = now.Add(time.Hour)
	ev = event(t, n, "falco", falcoBare)
	e.Enrich(ev)
	if ev.Orchestrator.Namespace != "" || e.Stats().Misses.Load() != 1 || e.Stats().EvictedExpired.Load() != 1 {
		t.Errorf("after ttl: %q, misses %d, expired %d", ev.Orchestrator.Namespace, e.Stats().Misses.Load(), e.Stats().EvictedExpired.Load())
	}
	e.Enrich(event(t, n, "docker", dockerK8s)) // two keys replace the expired full id and the short one
	if got := e.Stats().EvictedExpired.Load(); got != 2 || e.Stats().EvictedCapacity.Load() != 0 {
		t.Errorf("expired evictions %d, capacity %d; want 2, 0", got, e.Stats().EvictedCapacity.Load())
	}
	e.Enrich(event(t, n, "docker", strings.ReplaceAll(dockerK8s, "ffffeeee", "00001111"))) // a live cache, full
	if got := e.Stats().EvictedCapacity.Load(); got != 2 {
		t.Errorf("capacity evictions %d, want 2", got)
	}
	if c, _ := e.Len(); c != 2 {
		t.Errorf("%d entries in a cache of 2", c)
	}
}

// TestTrustedImage: a filled image is judged by the trusted registries.
func TestTrustedImage(t *testing.T) {
	n := normalizer(t)
	e, _ := enrich.New(enrich.NewDefaultConfig(), enrich.WithTrustedRegistries(normalize.TrustedRegistries{"registry.shop.internal"}))
	e.Enrich(event(t, n, "tetragon", tetragonWithPod))
	ev := event(t, n, "falco", falcoBare)
	e.Enrich(ev)
	if ev.Crowsnest.Image.Trusted == nil || !*ev.Crowsnest.Image.Trusted {
		t.Errorf("trusted %v", ev.Crowsnest.Image.Trusted)
	}
}

// TestConcurrent: sources enrich from their own goroutines (run with -race).
func TestConcurrent(t *testing.T) {
	n := normalizer(t)
	e, _ := enrich.New(enrich.NewDefaultConfig())
	raws := [][2]string{{"k8s_audit", auditStatusPatch}, {"tetragon", tetragonWithPod}, {"falco", falcoBare}, {"tetragon", tetragonBare},
		{"docker", dockerK8s}, {"docker", dockerExec}, {"procwatch", procwatchExec}, {"k8s_audit", auditPodCreate}, {"falco", falcoNoImage}}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 200 {
				r := raws[(g+i)%len(raws)]
				e.Enrich(event(t, n, r[0], r[1]))
			}
		})
	}
	wg.Wait()
	ev := event(t, n, "falco", falcoBare)
	e.Enrich(ev)
	if ev.Orchestrator.Resource.Name != paymentsPod {
		t.Errorf("pod %q", ev.Orchestrator.Resource.Name)
	}
}

func TestMetrics(t *testing.T) {
	n := normalizer(t)
	e, _ := enrich.New(enrich.NewDefaultConfig())
	reg := prometheus.NewRegistry()
	if err := e.RegisterMetrics(reg); err != nil {
		t.Fatal(err)
	}
	e.Enrich(event(t, n, "tetragon", tetragonWithPod))
	e.Enrich(event(t, n, "falco", falcoBare))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			key := mf.GetName()
			for _, l := range m.GetLabel() {
				key += "," + l.GetName() + "=" + l.GetValue()
			}
			got[key] = m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	for k, v := range map[string]float64{
		"crowsnest_enrich_cache_lookups_total,result=hit":        1,
		"crowsnest_enrich_cache_lookups_total,result=miss":       0,
		"crowsnest_enrich_events_enriched_total":                 1,
		"crowsnest_enrich_cache_entries,cache=containers":        2,
		"crowsnest_enrich_cache_evictions_total,reason=capacity": 0,
	} {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s = %v (present %v), want %v", k, g, ok, v)
		}
	}
}

func TestConfig(t *testing.T) {
	if err := enrich.NewDefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	bad := enrich.Config{Enabled: true, MaxEntries: 0, TTL: -time.Second}
	err := bad.Validate()
	if err == nil || !strings.Contains(err.Error(), "max_entries") || !strings.Contains(err.Error(), "ttl") {
		t.Errorf("got %v", err)
	}
	if _, err := enrich.New(bad); err == nil {
		t.Error("New accepted an invalid config")
	}
}

// TestSpoofedTeachesNothing: an event whose collector's identity cannot
// vouch for what it claims (crowsnest.spoofed_fields, marked by the real
// normalizer's voucher) must not poison the join cache for later events;
// the same event from a collector bound where it runs does teach, so the
// test fails if the marking or the join breaks.
func TestSpoofedTeachesNothing(t *testing.T) {
	trusted := normalizer(t)
	for _, c := range []struct {
		name      string
		binding   vouch.Binding
		teacher   [2]string // source, raw: normalized as published by collector "c-1"
		learner   [2]string // from an unbound collector, lacking what the teacher says
		spoofed   string    // the field the voucher marks; "" for the control
		wantPod   string
		wantImage string
	}{
		{"runtime event claiming another node", vouch.Binding{Collector: "c-1", Node: "worker-9"},
			[2]string{"tetragon", tetragonWithPod}, [2]string{"falco", falcoBare}, "host.name,crowsnest.collector.node", "", ""},
		{"runtime event from its own node (control)", vouch.Binding{Collector: "c-1", Node: "worker-1"},
			[2]string{"tetragon", tetragonWithPod}, [2]string{"falco", falcoBare}, "", paymentsPod, paymentsImage},
		{"pod spec claimed outside the collector's namespace", vouch.Binding{Collector: "c-1", Namespace: "dev"},
			[2]string{"k8s_audit", auditPodCreate}, [2]string{"falco", falcoNoImage}, "orchestrator.namespace", paymentsPod, ""},
		{"pod spec from its own namespace (control)", vouch.Binding{Collector: "c-1", Namespace: "shop"},
			[2]string{"k8s_audit", auditPodCreate}, [2]string{"falco", falcoNoImage}, "", paymentsPod, "docker.io/envoyproxy/envoy:v1.30.1"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := normalize.NewDefaultConfig()
			cfg.Vouch.Collectors = []vouch.Binding{c.binding}
			reg, err := sources.NewRegistry(cfg)
			if err != nil {
				t.Fatal(err)
			}
			n, err := normalize.New(cfg, reg)
			if err != nil {
				t.Fatal(err)
			}
			teacher := new(schemas.Event)
			rec := normalize.Record{Source: c.teacher[0], Data: []byte(c.teacher[1]), Node: "worker-1", Collector: "c-1"}
			if err := n.Normalize(&rec, teacher); err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(teacher.Crowsnest.SpoofedFields, ","); got != c.spoofed {
				t.Fatalf("spoofed_fields %q, want %q", got, c.spoofed)
			}
			e, err := enrich.New(enrich.NewDefaultConfig())
			if err != nil {
				t.Fatal(err)
			}
			e.Enrich(teacher)
			if containers, pods := e.Len(); c.spoofed != "" && (containers+pods != 0 || e.Stats().Learned.Load() != 0) {
				t.Errorf("cache holds %d containers, %d pods after a spoofed event", containers, pods)
			}
			ev := event(t, trusted, c.learner[0], c.learner[1])
			e.Enrich(ev)
			if ev.Orchestrator.Resource.Name != c.wantPod || ev.Container.Image.Name != c.wantImage {
				t.Errorf("later event got pod %q image %q, want pod %q image %q",
					ev.Orchestrator.Resource.Name, ev.Container.Image.Name, c.wantPod, c.wantImage)
			}
		})
	}
}
