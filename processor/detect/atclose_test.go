package detect_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/crowsnest-siem/crowsnest/bus/deadletter"
	"github.com/crowsnest-siem/crowsnest/bus/embedded/natstest"
	"github.com/crowsnest-siem/crowsnest/bus/headers"
	"github.com/crowsnest-siem/crowsnest/bus/topology"
	"github.com/crowsnest-siem/crowsnest/processor/detect"
	"github.com/crowsnest-siem/crowsnest/processor/detect/kvstate"
	"github.com/crowsnest-siem/crowsnest/processor/normalize"
	"github.com/crowsnest-siem/crowsnest/processor/normalize/k8saudit"
	"github.com/crowsnest-siem/crowsnest/processor/pipeline"
)

// The at-close scenario: the example correlations of testdata/atclose (one
// per operator, all counting 403s per user over 1m) on these denials, at
// seconds after atCloseT0. u5's third denial is past its first window's end
// (10 s + 1 m), so it opens a second window.
var (
	atCloseT0      = time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	atCloseDenials = []struct {
		user     string
		sec      int
		resource string
	}{
		{"u1", 0, "pods"},
		{"u2", 1, "pods"}, {"u2", 2, "pods"},
		{"u3", 3, "pods"}, {"u3", 4, "secrets"}, {"u3", 5, "nodes"},
		{"u4", 6, "pods"}, {"u4", 7, "pods"}, {"u4", 8, "pods"}, {"u4", 9, "pods"},
		{"u5", 10, "pods"}, {"u5", 20, "pods"}, {"u5", 75, "pods"},
	}
	// atCloseMover is an allowed request (no base-rule match) much later:
	// it moves the file's clock, or the watermark, past every window's end.
	atCloseMover = 300

	// atCloseWant is every correlation alert the scenario raises: rule,
	// entity, contributing denials, alert time (the window's end, seconds).
	atCloseWant = []string{
		"fewer_than_3 group:u1 [u1@0] 60", "fewer_than_3 group:u2 [u2@1 u2@2] 61", "fewer_than_3 group:u5 [u5@10 u5@20] 70", "fewer_than_3 group:u5 [u5@75] 135",
		"at_most_3 group:u1 [u1@0] 60", "at_most_3 group:u2 [u2@1 u2@2] 61", "at_most_3 group:u3 [u3@3 u3@4 u3@5] 63", "at_most_3 group:u5 [u5@10 u5@20] 70", "at_most_3 group:u5 [u5@75] 135",
		"exactly_3 group:u3 [u3@3 u3@4 u3@5] 63",
		"not_2 group:u1 [u1@0] 60", "not_2 group:u3 [u3@3 u3@4 u3@5] 63", "not_2 group:u4 [u4@6 u4@7 u4@8 u4@9] 66", "not_2 group:u5 [u5@75] 135",
		"two_or_three group:u2 [u2@1 u2@2] 61", "two_or_three group:u3 [u3@3 u3@4 u3@5] 63", "two_or_three group:u5 [u5@10 u5@20] 70",
		"one_resource group:u1 [u1@0] 60", "one_resource group:u2 [u2@1 u2@2] 61", "one_resource group:u4 [u4@6 u4@7 u4@8 u4@9] 66", "one_resource group:u5 [u5@10 u5@20] 70", "one_resource group:u5 [u5@75] 135",
	}
)

// atCloseRuleNames maps the example rules' ids to their short names.
var atCloseRuleNames = map[string]string{
	"5d1c0e5a-7a43-4c55-9a57-0d7f3b3c0a02": "fewer_than_3",
	"5d1c0e5a-7a43-4c55-9a57-0d7f3b3c0a03": "at_most_3",
	"5d1c0e5a-7a43-4c55-9a57-0d7f3b3c0a04": "exactly_3",
	"5d1c0e5a-7a43-4c55-9a57-0d7f3b3c0a05": "not_2",
	"5d1c0e5a-7a43-4c55-9a57-0d7f3b3c0a06": "two_or_three",
	"5d1c0e5a-7a43-4c55-9a57-0d7f3b3c0a07": "one_resource",
}

func atCloseAuditID(i int) string { return fmt.Sprintf("7a7a7a7a-0000-4000-8000-%012d", i) }

// atCloseRecord is raw audit record i of the scenario (i == len: the mover).
func atCloseRecord(i int) []byte {
	user, sec, resource, code := "zed", atCloseMover, "pods", 200
	if i < len(atCloseDenials) {
		d := atCloseDenials[i]
		user, sec, resource, code = d.user, d.sec, d.resource, 403
	}
	ts := atCloseT0.Add(time.Duration(sec) * time.Second).Format(time.RFC3339Nano)
	return fmt.Appendf(nil, `{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":%q,"stage":"ResponseComplete",`+
		`"requestURI":"/api/v1/namespaces/shop/%s","verb":"list","user":{"username":%q},"sourceIPs":["198.51.100.7"],`+
		`"objectRef":{"resource":%q,"namespace":"shop","apiVersion":"v1"},"responseStatus":{"code":%d},`+
		`"requestReceivedTimestamp":%q,"stageTimestamp":%q}`, atCloseAuditID(i), resource, user, resource, code, ts, ts)
}

// atCloseAlert is a correlation alert as the scenario describes it.
type atCloseAlert struct {
	Timestamp time.Time `json:"@timestamp"`
	Rule      struct {
		ID string `json:"id"`
	} `json:"rule"`
	Crowsnest struct {
		Alert struct {
			Correlation string   `json:"correlation"`
			EventIDs    []string `json:"event_ids"`
			Entity      string   `json:"entity"`
		} `json:"alert"`
	} `json:"crowsnest"`
}

// describe turns an alert into atCloseWant's terms ("" for an alert that is
// not one of the example correlations).
func (a atCloseAlert) describe() string {
	name, ok := atCloseRuleNames[a.Rule.ID]
	if !ok || a.Crowsnest.Alert.Correlation == "" {
		return ""
	}
	var labels []string
	for _, id := range a.Crowsnest.Alert.EventIDs {
		label := "?" + id
		for i, d := range atCloseDenials {
			if strings.HasPrefix(id, atCloseAuditID(i)) {
				label = fmt.Sprintf("%s@%d", d.user, d.sec)
			}
		}
		labels = append(labels, label)
	}
	return fmt.Sprintf("%s %s [%s] %d", name, a.Crowsnest.Alert.Entity, strings.Join(labels, " "), int(a.Timestamp.Sub(atCloseT0)/time.Second))
}

func atCloseRules(t *testing.T) *detect.Rules {
	t.Helper()
	rules, problems, err := detect.Load(detect.LoadOptions{}, detect.BuiltinSource(), detect.Source{Ruleset: "atclose", FS: os.DirFS("testdata/atclose")})
	if err != nil || len(problems) > 0 {
		t.Fatal(err, problems)
	}
	return rules
}

func k8sNormalizer(t *testing.T) *normalize.Normalizer {
	t.Helper()
	cfg := normalize.NewDefaultConfig()
	reg, err := normalize.NewRegistry(cfg, k8saudit.NewFactory())
	if err != nil {
		t.Fatal(err)
	}
	norm, err := normalize.New(cfg, reg)
	if err != nil {
		t.Fatal(err)
	}
	return norm
}

func sortedCopy(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// TestAtCloseLines: `crowsnest detect` (detect.Lines) judges lt, lte, eq,
// neq, a gte+lte range and a value_count lt when the file's event time passes
// a window's end, and at the end of the input for windows still open; each
// window (starting at its group's first match) fires once, dated at its end.
func TestAtCloseLines(t *testing.T) {
	cases := []struct {
		name       string
		order      []int // records, by index (len(atCloseDenials) is the mover)
		atEndInput []string
	}{
		{"in order, closed by later events", seq(len(atCloseDenials) + 1), nil},
		// Without the mover nothing passes u5's second window: it is judged
		// when the input ends.
		{"last window judged at end of input", seq(len(atCloseDenials)),
			[]string{"fewer_than_3 group:u5 [u5@75] 135", "at_most_3 group:u5 [u5@75] 135", "not_2 group:u5 [u5@75] 135", "one_resource group:u5 [u5@75] 135"}},
		// Out of order within a window: the windows depend on event times,
		// not on the order records come in.
		{"out of order within the windows", []int{2, 1, 0, 5, 3, 4, 9, 8, 7, 6, 11, 10, 12, 13}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := detect.NewDefaultConfig()
			cfg.SuppressionWindow = 0
			eng := detect.NewEngine(atCloseRules(t), cfg)
			var in bytes.Buffer
			for _, i := range tc.order {
				in.Write(atCloseRecord(i))
				in.WriteByte('\n')
			}
			var out bytes.Buffer
			res, err := detect.Lines(context.Background(), &in, k8sNormalizer(t), "k8s_audit", eng, &out, func(line int, err error) {
				t.Errorf("line %d: %v", line, err)
			})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			sc := bufio.NewScanner(&out)
			for sc.Scan() {
				var a atCloseAlert
				if err := json.Unmarshal(sc.Bytes(), &a); err != nil {
					t.Fatal(err)
				}
				if d := a.describe(); d != "" {
					got = append(got, d)
				}
			}
			if !slices.Equal(sortedCopy(got), sortedCopy(atCloseWant)) {
				t.Fatalf("alerts:\n%s\nwant:\n%s", strings.Join(sortedCopy(got), "\n"), strings.Join(sortedCopy(atCloseWant), "\n"))
			}
			// The windows judged at the end of the input come last.
			if n := len(tc.atEndInput); n > 0 && !slices.Equal(sortedCopy(got[len(got)-n:]), sortedCopy(tc.atEndInput)) {
				t.Fatalf("last alerts %v, want those judged at the end of the input %v", got[len(got)-n:], tc.atEndInput)
			}
			if res.Alerts < len(atCloseWant) {
				t.Fatalf("Lines counted %d alerts", res.Alerts)
			}
		})
	}
}

func seq(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

// stepClock is a processor clock a minute further on each reading, so the
// watermark's one-minute warm-up is over after the first events.
type stepClock struct{ calls atomic.Int64 }

func (c *stepClock) Now() time.Time {
	return atCloseT0.Add(24*time.Hour + time.Duration(c.calls.Add(1))*time.Minute)
}

// TestPipelineAtCloseKilledMidWindow: the pipeline on embedded JetStream
// with the at-close examples; the processor is killed on u5's third denial
// (every window open, that denial's window written to the state bucket but
// its input never acked). Its successor on the same server reads the windows
// back, the mover's event takes the watermark past every end, and each
// expected alert is in the alerts stream exactly once, on exactly its events.
func TestPipelineAtCloseKilledMidWindow(t *testing.T) {
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	ctx := t.Context()
	tcfg := topology.NewDefaultConfig()
	tcfg.Consumers.Processor.AckWait = 2 * time.Second
	tcfg.Consumers.Processor.Backoff = nil
	tcfg.Consumers.Processor.MaxDeliver = -1
	if err := topology.Ensure(ctx, js, tcfg); err != nil {
		t.Fatal(err)
	}
	for i := range len(atCloseDenials) + 1 {
		m := nats.NewMsg("crowsnest.raw.k8s_audit.node-1." + topology.KeyToken("ns/shop"))
		m.Data = atCloseRecord(i)
		m.Header.Set(headers.MsgID, "raw-"+atCloseAuditID(i))
		m.Header.Set(headers.Node, "node-1")
		m.Header.Set(headers.Observed, headers.FormatTime(time.Now()))
		if _, err := js.PublishMsg(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	cfg := pipeline.NewDefaultConfig()
	cfg.RetryDelay = 100 * time.Millisecond
	cfg.Detect.SuppressionWindow = 0
	rules := atCloseRules(t)
	newPipeline := func(js jetstream.JetStream, det pipeline.Detector) *pipeline.Pipeline {
		t.Helper()
		p, err := pipeline.New(js, k8sNormalizer(t), deadletter.NewPublisher(js), cfg, pipeline.Settings{
			Sources: []string{"k8s_audit"}, Consumer: tcfg.Consumers.Processor, Detector: det,
		})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	newEngine := func(js jetstream.JetStream) *detect.Engine {
		clock := &stepClock{}
		return detect.NewEngine(rules, cfg.Detect, detect.WithClock(clock.Now), detect.WithStateStore(kvstate.New(js)))
	}

	ncA, jsA := natstest.Connect(t, srv)
	victim := &killedProcessor{eng: newEngine(jsA), n: len(atCloseDenials), killed: make(chan struct{}), gone: make(chan struct{})}
	ctxA, cancelA := context.WithCancel(ctx)
	doneA := make(chan struct{})
	go func() {
		defer close(doneA)
		_ = newPipeline(jsA, victim).Run(ctxA) // a killed process reports nothing
	}()
	select {
	case <-victim.killed:
	case <-time.After(20 * time.Second):
		t.Fatal("the first processor never reached u5's third denial")
	}
	ncA.Close()
	close(victim.gone)
	cancelA()
	<-doneA
	if got := atCloseStreamAlerts(t, js); len(got) != 0 {
		t.Fatalf("alerts %v before any window closed", got)
	}

	ctxB, cancelB := context.WithCancel(ctx)
	doneB := make(chan error, 1)
	go func() { doneB <- newPipeline(js, newEngine(js)).Run(ctxB) }()
	deadline := time.Now().Add(30 * time.Second)
	for len(atCloseStreamAlerts(t, js)) < len(atCloseWant) || rawLeft(t, js) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("alerts %v, raw records left %d", atCloseStreamAlerts(t, js), rawLeft(t, js))
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond) // a duplicate would show by now
	cancelB()
	if err := <-doneB; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if got := atCloseStreamAlerts(t, js); !slices.Equal(sortedCopy(got), sortedCopy(atCloseWant)) {
		t.Fatalf("alerts in the stream:\n%s\nwant each exactly once:\n%s", strings.Join(sortedCopy(got), "\n"), strings.Join(sortedCopy(atCloseWant), "\n"))
	}
	// Every window was judged and deleted: the bucket holds nothing of them.
	keys, err := kvstate.New(js).Keys(ctx, "correlation.")
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 0 {
		t.Fatalf("state bucket still holds %v", keys)
	}
}

// atCloseStreamAlerts describes the example correlations' alerts in the
// alerts stream.
func atCloseStreamAlerts(t *testing.T, js jetstream.JetStream) []string {
	t.Helper()
	s, err := js.Stream(t.Context(), topology.AlertsStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(t.Context(), seq)
		if err != nil {
			continue
		}
		var a atCloseAlert
		if err := json.Unmarshal(m.Data, &a); err != nil {
			t.Fatalf("alert %d: %v", seq, err)
		}
		if d := a.describe(); d != "" {
			out = append(out, d)
		}
	}
	return out
}
