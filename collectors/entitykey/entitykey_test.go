package entitykey

import (
	"testing"

	"github.com/crowsnest-siem/crowsnest/bus/topology"
)

// keyTests drives the test, the benchmark and the fuzz seeds.
var keyTests = []struct {
	name   string
	source string
	data   string
	want   string
}{
	{"audit namespaced", topology.SourceK8sAudit,
		`{"kind":"Event","auditID":"a","verb":"create","user":{"username":"alice"},"objectRef":{"resource":"pods","namespace":"shop","name":"web-1","subresource":"exec"}}`,
		"ns/shop"},
	{"audit namespace object", topology.SourceK8sAudit,
		`{"kind":"Event","user":{"username":"alice"},"objectRef":{"resource":"namespaces","name":"shop","apiVersion":"v1"}}`,
		"ns/shop"},
	{"audit cluster-scoped", topology.SourceK8sAudit,
		`{"kind":"Event","user":{"username":"system:admin"},"objectRef":{"resource":"clusterrolebindings","name":"x"}}`,
		"user/system:admin"},
	{"audit non-resource", topology.SourceK8sAudit,
		`{"kind":"Event","requestURI":"/healthz","user":{"username":"system:anonymous"}}`,
		"user/system:anonymous"},
	{"audit gke namespaced", topology.SourceK8sAudit,
		`{"protoPayload":{"resourceName":"core/v1/namespaces/shop/pods/web-1","authenticationInfo":{"principalEmail":"a@example.com"}}}`,
		"ns/shop"},
	{"audit gke cluster-scoped", topology.SourceK8sAudit,
		`{"protoPayload":{"resourceName":"rbac.authorization.k8s.io/v1/clusterroles/x","authenticationInfo":{"principalEmail":"a@example.com"}}}`,
		"user/a@example.com"},
	{"audit nothing", topology.SourceK8sAudit, `{"kind":"Event"}`, ""},
	{"falco pod", topology.SourceFalco,
		`{"rule":"Terminal shell in container","hostname":"node-1","output_fields":{"k8s.ns.name":"shop","k8s.pod.name":"web-1"}}`,
		"ns/shop"},
	{"falco host", topology.SourceFalco,
		`{"rule":"Read sensitive file","hostname":"node-1","output_fields":{"k8s.ns.name":"<NA>","proc.name":"cat"}}`,
		"node/node-1"},
	{"falco nothing", topology.SourceFalco, `{"rule":"x"}`, ""},
	{"docker pod container", topology.SourceDocker,
		`{"Type":"container","Action":"start","Actor":{"ID":"abc","Attributes":{"io.kubernetes.pod.namespace":"shop","io.kubernetes.pod.name":"web-1"}}}`,
		"ns/shop"},
	{"docker plain container", topology.SourceDocker, `{"Type":"container","Action":"start","Actor":{"ID":"abc","Attributes":{"name":"x"}}}`, ""},
	{"docker legacy", topology.SourceDocker, `{"status":"start","id":"abc","from":"nginx"}`, ""},
	{"tetragon pod", topology.SourceTetragon,
		`{"process_exec":{"process":{"binary":"/bin/sh","pod":{"namespace":"shop","name":"web-1"}}},"node_name":"node-1","time":"2026-01-01T00:00:00Z"}`,
		"ns/shop"},
	{"tetragon host", topology.SourceTetragon,
		`{"process_kprobe":{"process":{"binary":"/usr/bin/curl"}},"node_name":"node-1"}`,
		"node/node-1"},
	{"auditd is the collector's node", topology.SourceAuditd, "type=SYSCALL msg=audit(1.0:1): node=x", ""},
	{"procwatch is the collector's", topology.SourceProcwatch, `{"kind":"exec"}`, ""},
	{"json is the collector's", topology.SourceJSON, `{"namespace":"shop"}`, ""},
	{"not JSON", topology.SourceK8sAudit, `not json`, ""},
	{"empty", topology.SourceFalco, ``, ""},
}

func TestOf(t *testing.T) {
	for _, tt := range keyTests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Of(tt.source, []byte(tt.data)); got != tt.want {
				t.Errorf("Of(%s, %s) = %q, want %q", tt.source, tt.data, got, tt.want)
			}
		})
	}
}

// One namespace, one key, whatever source saw it: the pod's audit and
// runtime events then share a partition.
func TestSameNamespaceSameKey(t *testing.T) {
	var keys []string
	for _, tt := range keyTests {
		if tt.want == "ns/shop" {
			keys = append(keys, Of(tt.source, []byte(tt.data)))
		}
	}
	if len(keys) < 5 {
		t.Fatalf("only %d namespaced samples", len(keys))
	}
	for _, k := range keys {
		if topology.KeyToken(k) != topology.KeyToken(keys[0]) {
			t.Errorf("key %q and %q differ", k, keys[0])
		}
	}
	if Namespace("") != "" || User("") != "" || Node("") != "" || Namespace("a") == User("a") || User("a") == Node("a") {
		t.Error("constructors do not keep kinds apart or do not leave empty names empty")
	}
}

func BenchmarkOf(b *testing.B) {
	for _, tt := range keyTests[:1] {
		data := []byte(tt.data)
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		for b.Loop() {
			Of(tt.source, data)
		}
	}
}

// FuzzOf: any bytes give a key without panicking, and the same key twice.
func FuzzOf(f *testing.F) {
	for _, tt := range keyTests {
		f.Add(tt.source, []byte(tt.data))
	}
	f.Fuzz(func(t *testing.T, source string, data []byte) {
		k := Of(source, data)
		if k != Of(source, data) {
			t.Fatal("not deterministic")
		}
		if err := topology.ValidateToken(topology.KeyToken(k)); err != nil {
			t.Fatal(err)
		}
	})
}
