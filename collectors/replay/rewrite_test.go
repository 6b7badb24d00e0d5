package replay

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/crowsnest-siem/crowsnest/bus/msgid"
	"github.com/crowsnest-siem/crowsnest/bus/topology"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

var testNow = time.Date(2027, 5, 6, 7, 8, 9, 123456789, time.UTC)

func mustLoad(t testing.TB) *sampleSet {
	t.Helper()
	set, err := loadSamples(nil)
	if err != nil {
		t.Fatalf("load bundled samples: %v", err)
	}
	return set
}

// rewriteLoop rewrites every record of one loop at testNow.
func rewriteLoop(t testing.TB, set *sampleSet, instance string, loop int64) (data [][]byte, ids []string) {
	t.Helper()
	for i := range set.records {
		s := &set.records[i]
		d, id, err := s.rw.rewrite(s, position{instance: instance, loop: loop, index: i}, testNow)
		if err != nil {
			t.Fatalf("rewrite record %d (%s): %v", i, s.source, err)
		}
		if !json.Valid(d) {
			t.Fatalf("record %d (%s) is not valid JSON after rewriting: %s", i, s.source, d)
		}
		if err := msgid.Validate(id); err != nil {
			t.Fatalf("record %d: id %q: %v", i, id, err)
		}
		data, ids = append(data, d), append(ids, id)
	}
	return data, ids
}

func TestBundledSamples(t *testing.T) {
	set := mustLoad(t)
	counts := map[string]int{}
	for _, s := range set.records {
		counts[s.source]++
	}
	if n := len(set.records); n < 60 || n > 150 {
		t.Errorf("bundled sample has %d records, want 60-150", n)
	}
	for _, src := range []string{topology.SourceK8sAudit, topology.SourceFalco, topology.SourceTetragon} {
		if counts[src] == 0 {
			t.Errorf("no %s records in the bundled sample", src)
		}
	}
	for i := 1; i < len(set.records); i++ {
		if set.records[i].at.Before(set.records[i-1].at) {
			t.Fatalf("records %d and %d are out of time order", i-1, i)
		}
	}
	// Every record of every source parses as its source's format.
	for i, s := range set.records {
		switch s.source {
		case topology.SourceK8sAudit:
			r := gjson.GetManyBytes(s.data, "kind", "apiVersion", "auditID", "stage", "verb", "user.username")
			if r[0].Str != "Event" || r[1].Str != "audit.k8s.io/v1" || r[2].Str == "" || r[3].Str == "" || r[4].Str == "" || r[5].Str == "" {
				t.Errorf("record %d is not a complete audit.k8s.io/v1 Event", i)
			}
		case topology.SourceFalco:
			r := gjson.GetManyBytes(s.data, "rule", "priority", "output", "output_fields.container\\.id", "output_fields.k8s\\.pod\\.name")
			for j, v := range r {
				if !v.Exists() {
					t.Errorf("falco record %d lacks field %d", i, j)
				}
			}
		case topology.SourceTetragon:
			if eventType(s.data) == "" {
				t.Errorf("tetragon record %d has no process_* key", i)
			}
		}
	}
}

// TestSampleStory checks the sample tells the story the README promises, so
// that correlations downstream have something to find.
func TestSampleStory(t *testing.T) {
	set := mustLoad(t)
	const pod, ns = "payments-7d9f5c8b6-q4zrx", "shop"
	has := func(src, path, want string) bool {
		for _, s := range set.records {
			if s.source != src {
				continue
			}
			if v := gjson.GetBytes(s.data, path); v.Exists() && strings.Contains(v.String(), want) {
				return true
			}
		}
		return false
	}
	checks := []struct {
		name, src, path, want string
	}{
		{"exec into payments", topology.SourceK8sAudit, "objectRef.subresource", "exec"},
		{"exec names the pod", topology.SourceK8sAudit, "requestURI", "/namespaces/shop/pods/" + pod + "/exec"},
		{"privileged pod", topology.SourceK8sAudit, "requestObject.spec.containers.0.securityContext.privileged", "true"},
		{"hostPath /", topology.SourceK8sAudit, "requestObject.spec.volumes.0.hostPath.path", "/"},
		{"hostPID", topology.SourceK8sAudit, "requestObject.spec.hostPID", "true"},
		{"untrusted :latest image", topology.SourceK8sAudit, "requestObject.spec.template.spec.containers.0.image", "minerfarm/node-exporter:latest"},
		{"cluster-admin binding", topology.SourceK8sAudit, "requestObject.roleRef.name", "cluster-admin"},
		{"secrets across namespaces", topology.SourceK8sAudit, "requestURI", "/api/v1/secrets?"},
		{"403s", topology.SourceK8sAudit, "responseStatus.code", "403"},
		{"anonymous", topology.SourceK8sAudit, "user.username", "system:anonymous"},
		{"service accounts", topology.SourceK8sAudit, "user.username", "system:serviceaccount:"},
		{"falco shell in payments", topology.SourceFalco, "output_fields.k8s\\.pod\\.name", pod},
		{"falco shadow", topology.SourceFalco, "output_fields.fd\\.name", "/etc/shadow"},
		{"falco write below etc", topology.SourceFalco, "rule", "Write below etc"},
		{"falco package management", topology.SourceFalco, "rule", "Package Management"},
		{"falco mining pool", topology.SourceFalco, "output_fields.fd\\.sport", "3333"},
		{"tetragon exec in payments", topology.SourceTetragon, "process_exec.process.pod.name", pod},
		{"tetragon curl", topology.SourceTetragon, "process_exec.process.binary", "/usr/bin/curl"},
		{"tetragon apt", topology.SourceTetragon, "process_exec.process.binary", "apt-get"},
		{"tetragon connect 4444", topology.SourceTetragon, "process_kprobe.args.0.sock_arg.dport", "4444"},
		{"tetragon connect 3333", topology.SourceTetragon, "process_kprobe.args.0.sock_arg.dport", "3333"},
		{"tetragon write /etc", topology.SourceTetragon, "process_kprobe.args.0.file_arg.path", "/etc/"},
	}
	for _, c := range checks {
		if !has(c.src, c.path, c.want) {
			t.Errorf("%s: no %s record with %s containing %q", c.name, c.src, c.path, c.want)
		}
	}
	// The same container, seen by Falco (short id) and Tetragon (full id).
	var falcoID, tetragonID string
	for _, s := range set.records {
		switch {
		case s.source == topology.SourceFalco && gjson.GetBytes(s.data, "output_fields.k8s\\.pod\\.name").Str == pod:
			falcoID = gjson.GetBytes(s.data, "output_fields.container\\.id").Str
		case s.source == topology.SourceTetragon && gjson.GetBytes(s.data, "process_exec.process.pod.name").Str == pod:
			tetragonID = gjson.GetBytes(s.data, "process_exec.process.pod.container.id").Str
		}
	}
	if falcoID == "" || !strings.HasPrefix(tetragonID, "containerd://"+falcoID) {
		t.Errorf("falco container id %q is not the prefix of tetragon's %q", falcoID, tetragonID)
	}
	if !has(topology.SourceFalco, "output_fields.k8s\\.ns\\.name", ns) {
		t.Errorf("no falco alert in namespace %s", ns)
	}
}

func TestRewriteGivesFreshIdentitiesPerLoop(t *testing.T) {
	set := mustLoad(t)
	seen := map[string]string{}
	for loop := int64(0); loop < 3; loop++ {
		_, ids := rewriteLoop(t, set, "inst-a", loop)
		for i, id := range ids {
			if prev, dup := seen[id]; dup {
				t.Fatalf("loop %d record %d: id %s already used by %s", loop, i, id, prev)
			}
			seen[id] = "loop " + string(rune('0'+loop))
		}
	}
	// Another instance gets other ids for the same positions.
	_, other := rewriteLoop(t, set, "inst-b", 0)
	for _, id := range other {
		if _, dup := seen[id]; dup {
			t.Fatalf("instance b reuses id %s of instance a", id)
		}
	}
	// The same position gives the same id, whenever it is computed.
	_, again := rewriteLoop(t, set, "inst-b", 0)
	for i := range other {
		if other[i] != again[i] {
			t.Fatalf("record %d: id %s then %s for one position", i, other[i], again[i])
		}
	}
}

func TestRewriteK8sAudit(t *testing.T) {
	set := mustLoad(t)
	data, ids := rewriteLoop(t, set, "inst", 4)
	byOrig := map[string]string{} // original auditID -> new
	for i, s := range set.records {
		if s.source != topology.SourceK8sAudit {
			continue
		}
		orig := gjson.GetBytes(s.data, "auditID").Str
		got := gjson.GetBytes(data[i], "auditID").Str
		if got == orig {
			t.Fatalf("record %d keeps its auditID", i)
		}
		if prev, ok := byOrig[orig]; ok && prev != got {
			t.Fatalf("two stages of auditID %s got different new ids %s, %s", orig, prev, got)
		}
		byOrig[orig] = got
		stage := gjson.GetBytes(data[i], "stage").Str
		if want, _ := msgid.K8sAudit(got, stage); ids[i] != want {
			t.Fatalf("record %d id %q, want %q", i, ids[i], want)
		}
		st := gjson.GetBytes(data[i], "stageTimestamp").Str
		if want := testNow.Truncate(time.Microsecond).Format("2006-01-02T15:04:05.000000Z07:00"); st != want {
			t.Fatalf("record %d stageTimestamp %q, want now %q", i, st, want)
		}
		rr, _ := time.Parse(time.RFC3339Nano, gjson.GetBytes(data[i], "requestReceivedTimestamp").Str)
		origRR, _ := time.Parse(time.RFC3339Nano, gjson.GetBytes(s.data, "requestReceivedTimestamp").Str)
		if got, want := testNow.Sub(rr).Truncate(time.Microsecond), s.at.Sub(origRR); got < want-time.Microsecond || got > want+time.Microsecond {
			t.Fatalf("record %d: request latency %v after rewriting, %v before", i, got, want)
		}
		// Everything else is untouched.
		for _, p := range []string{"verb", "requestURI", "user", "objectRef", "responseStatus", "requestObject.spec", "annotations"} {
			if a, b := gjson.GetBytes(s.data, p).Raw, gjson.GetBytes(data[i], p).Raw; a != b {
				t.Fatalf("record %d: %s changed from %s to %s", i, p, a, b)
			}
		}
	}
}

func TestRewriteTetragonKeepsProcessTree(t *testing.T) {
	set := mustLoad(t)
	data, _ := rewriteLoop(t, set, "inst", 2)
	execIDs := map[string]bool{}
	for i, s := range set.records {
		if s.source != topology.SourceTetragon {
			continue
		}
		typ := eventType(data[i])
		for _, p := range []string{".process.exec_id", ".parent.exec_id"} {
			old, now := gjson.GetBytes(s.data, typ+p).Str, gjson.GetBytes(data[i], typ+p).Str
			if old == now {
				t.Fatalf("record %d: %s not rewritten", i, p)
			}
			raw, err := base64.StdEncoding.DecodeString(now)
			if err != nil || strings.Count(string(raw), ":") != 2 {
				t.Fatalf("record %d: new exec id %q is not base64(node:ktime:pid)", i, now)
			}
			oldRaw, _ := base64.StdEncoding.DecodeString(old)
			if node := strings.Split(string(oldRaw), ":")[0]; !strings.HasPrefix(string(raw), node+":") {
				t.Fatalf("record %d: new exec id %q lost node %q", i, raw, node)
			}
		}
		execIDs[gjson.GetBytes(data[i], typ+".process.exec_id").Str] = true
		if got := gjson.GetBytes(data[i], "time").Str; got != testNow.Format("2006-01-02T15:04:05.000000000Z07:00") {
			t.Fatalf("record %d: time %q, want now", i, got)
		}
		if pst, _ := time.Parse(time.RFC3339Nano, gjson.GetBytes(data[i], typ+".process.start_time").Str); pst.After(testNow) {
			t.Fatalf("record %d: process starts after the event", i)
		}
	}
	// A child's parent is the rewritten parent: the tree survives.
	linked := 0
	for i, s := range set.records {
		if s.source != topology.SourceTetragon {
			continue
		}
		if execIDs[gjson.GetBytes(data[i], eventType(data[i])+".process.parent_exec_id").Str] {
			linked++
		}
	}
	if linked < 5 {
		t.Fatalf("only %d tetragon events name a parent seen in the sample after rewriting", linked)
	}
}

func TestRewriteFalco(t *testing.T) {
	set := mustLoad(t)
	data, _ := rewriteLoop(t, set, "inst", 1)
	for i, s := range set.records {
		if s.source != topology.SourceFalco {
			continue
		}
		if gjson.GetBytes(data[i], "uuid").Str == gjson.GetBytes(s.data, "uuid").Str {
			t.Fatalf("record %d keeps its uuid", i)
		}
		if got := gjson.GetBytes(data[i], "output_fields.evt\\.time").Int(); got != testNow.UnixNano() {
			t.Fatalf("record %d evt.time %d, want %d", i, got, testNow.UnixNano())
		}
		if out := gjson.GetBytes(data[i], "output").Str; !strings.HasPrefix(out, "2027-05-06T07:08:09.123456789+0000: ") {
			t.Fatalf("record %d output %q does not start with now", i, out)
		}
		if a, b := gjson.GetBytes(s.data, "rule").Raw, gjson.GetBytes(data[i], "rule").Raw; a != b {
			t.Fatalf("record %d rule changed", i)
		}
	}
	if _, ok := rewriteOutputTime("09:01:10.053300000: Notice x", testNow); !ok {
		t.Error("time-of-day output prefix not recognized")
	}
	if _, ok := rewriteOutputTime("no time here: x", testNow); ok {
		t.Error("output without a time rewritten")
	}
}

// TestRewriteGolden pins the rewritten form of one record of each source.
func TestRewriteGolden(t *testing.T) {
	set := mustLoad(t)
	first := map[string]int{}
	for i, s := range set.records {
		if _, ok := first[s.source]; !ok && (s.source != topology.SourceK8sAudit || gjson.GetBytes(s.data, "objectRef.subresource").Str == "exec") {
			first[s.source] = i
		}
	}
	for src, i := range first {
		t.Run(src, func(t *testing.T) {
			s := &set.records[i]
			data, id, err := s.rw.rewrite(s, position{instance: "golden", loop: 7, index: i}, testNow)
			if err != nil {
				t.Fatal(err)
			}
			var pretty bytes.Buffer
			if err := json.Indent(&pretty, data, "", "  "); err != nil {
				t.Fatal(err)
			}
			got := append([]byte("id: "+id+"\n"), pretty.Bytes()...)
			got = append(got, '\n')
			path := filepath.Join("testdata", "rewrite_"+src+".golden")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("rewritten %s record differs from %s (go test -update to accept):\n%s", src, path, got)
			}
		})
	}
}

func TestLoadSamplesErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name  string
		files []FileConfig
		want  string
	}{
		{"missing file", []FileConfig{{Source: "falco", Path: filepath.Join(dir, "nope.jsonl")}}, "nope.jsonl"},
		{"not json", []FileConfig{{Source: "json", Path: write("bad.jsonl", "{\"a\":1}\nnot json\n")}}, "bad.jsonl:2"},
		{"audit without time", []FileConfig{{Source: "k8s_audit", Path: write("a.jsonl", `{"auditID":"x","stage":"ResponseComplete"}`)}}, "stageTimestamp"},
		{"empty", []FileConfig{{Source: "json", Path: write("empty.jsonl", "\n\n")}}, "no records"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := loadSamples(tt.files)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("loadSamples = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func FuzzRewrite(f *testing.F) {
	set := mustLoad(f)
	for _, s := range set.records[:20] {
		f.Add(s.source, s.data)
	}
	f.Add("tetragon", []byte(`{"process_exec":{"process":{"exec_id":"!!"}},"time":"2026-01-01T00:00:00Z"}`))
	f.Fuzz(func(t *testing.T, source string, data []byte) {
		if !topology.ValidSource(source) || !gjson.ValidBytes(data) {
			return
		}
		rw := rewriterFor(source)
		at, err := rw.timestamp(data)
		if err != nil {
			return
		}
		s := &sample{source: source, data: data, at: at, rw: rw}
		out, id, err := rw.rewrite(s, position{instance: "fuzz", loop: 1, index: 2}, testNow)
		if err != nil {
			return
		}
		if !gjson.ValidBytes(out) {
			t.Fatalf("rewrite of valid JSON produced invalid JSON: %q", out)
		}
		if err := msgid.Validate(id); err != nil {
			t.Fatalf("invalid id %q: %v", id, err)
		}
	})
}
