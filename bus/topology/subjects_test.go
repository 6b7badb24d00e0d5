package topology

import (
	"errors"
	"strings"
	"testing"
)

func TestSubjectBuilders(t *testing.T) {
	tests := []struct {
		name    string
		build   func() (string, error)
		want    string
		wantErr bool
	}{
		{"raw", func() (string, error) { return RawSubject("k8s_audit", "node-1", "0a1b") }, "crowsnest.raw.k8s_audit.node-1.0a1b", false},
		{"raw json", func() (string, error) { return RawSubject("json", "c", "k") }, "crowsnest.raw.json.c.k", false},
		{"raw unknown source", func() (string, error) { return RawSubject("syslog", "node-1", "k") }, "", true},
		{"raw dotted collector", func() (string, error) { return RawSubject("falco", "node1.example.com", "k") }, "", true},
		{"raw wildcard collector", func() (string, error) { return RawSubject("falco", ">", "k") }, "", true},
		{"raw empty collector", func() (string, error) { return RawSubject("falco", "", "k") }, "", true},
		{"raw dotted key", func() (string, error) { return RawSubject("falco", "c", "ns.default") }, "", true},
		{"raw empty key", func() (string, error) { return RawSubject("falco", "c", "") }, "", true},
		{"raw wildcard", func() (string, error) { return RawSubjects("tetragon") }, "crowsnest.raw.tetragon.*.*", false},
		{"raw partition", func() (string, error) { return RawPartitionSubjects("tetragon", 3) }, "crowsnest.raw.tetragon.3.*.*", false},
		{"raw partition out of range", func() (string, error) { return RawPartitionSubjects("tetragon", MaxPartitions) }, "", true},
		{"raw partition unknown source", func() (string, error) { return RawPartitionSubjects("x", 0) }, "", true},
		{"raw wildcard unknown", func() (string, error) { return RawSubjects("x") }, "", true},
		{"event", func() (string, error) { return EventSubject("docker") }, "crowsnest.events.docker", false},
		{"event unknown", func() (string, error) { return EventSubject("Docker") }, "", true},
		{"alert", func() (string, error) { return AlertSubject("high") }, "crowsnest.alerts.high", false},
		{"alert bad level", func() (string, error) { return AlertSubject("very high") }, "", true},
		{"dlq", func() (string, error) { return DeadLetterSubject("processor", "auditd") }, "crowsnest.dlq.processor.auditd", false},
		{"dlq sink", func() (string, error) { return DeadLetterSubject("sink-clickhouse", "falco") }, "crowsnest.dlq.sink-clickhouse.falco", false},
		{"dlq unknown source token", func() (string, error) { return DeadLetterSubject("processor", "unknown") }, "crowsnest.dlq.processor.unknown", false},
		{"dlq bad stage", func() (string, error) { return DeadLetterSubject("a.b", "falco") }, "", true},
		{"dlq empty source", func() (string, error) { return DeadLetterSubject("processor", "") }, "", true},
		{"dlq collector stage needs its id", func() (string, error) { return DeadLetterSubject("collector", "falco") }, "", true},
		{"dlq collector", func() (string, error) { return CollectorDeadLetterSubject("falco", "node-1") }, "crowsnest.dlq.collector.falco.node-1", false},
		{"dlq collector unknown source token", func() (string, error) { return CollectorDeadLetterSubject("unknown", "n") }, "crowsnest.dlq.collector.unknown.n", false},
		{"dlq collector dotted id", func() (string, error) { return CollectorDeadLetterSubject("falco", "a.b") }, "", true},
		{"dlq collector wildcard id", func() (string, error) { return CollectorDeadLetterSubject("falco", "*") }, "", true},
		{"dlq collector empty id", func() (string, error) { return CollectorDeadLetterSubject("falco", "") }, "", true},
		{"dlq collector bad source", func() (string, error) { return CollectorDeadLetterSubject("a b", "n") }, "", true},
		{"raw stream", func() (string, error) { return RawStream("k8s_audit") }, "CROWSNEST_RAW_K8S_AUDIT", false},
		{"raw stream procwatch", func() (string, error) { return RawStream("procwatch") }, "CROWSNEST_RAW_PROCWATCH", false},
		{"raw stream unknown", func() (string, error) { return RawStream("nope") }, "", true},
		{"sink consumer", func() (string, error) { return SinkConsumerName("clickhouse") }, "sink-clickhouse", false},
		{"sink consumer bad", func() (string, error) { return SinkConsumerName("click house") }, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.build()
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
	if _, err := EventSubject("nope"); !errors.Is(err, ErrUnknownSource) {
		t.Errorf("unknown source error %v does not wrap ErrUnknownSource", err)
	}
}

// Every raw subject must fall in its own raw stream's subjects and no other
// stream's: the streams partition crowsnest's subject space.
func TestSubjectsLandInExactlyOneStream(t *testing.T) {
	streams := Streams(NewDefaultConfig())
	var subjects []string
	for _, src := range Sources() {
		raw, _ := RawSubject(src, "c1", KeyToken("ns/default"))
		ev, _ := EventSubject(src)
		dlq, _ := DeadLetterSubject(ProcessorStage, src)
		cdlq, _ := CollectorDeadLetterSubject(src, "c1")
		subjects = append(subjects, raw, ev, dlq, cdlq)
	}
	al, _ := AlertSubject("critical")
	subjects = append(subjects, al)
	for _, subj := range subjects {
		n := 0
		for _, s := range streams {
			for _, filter := range s.Subjects {
				if subjectMatches(filter, subj) {
					n++
				}
			}
		}
		if n != 1 {
			t.Errorf("subject %s is captured by %d streams, want 1", subj, n)
		}
	}
}

// subjectMatches implements NATS wildcard matching for the test.
func subjectMatches(filter, subj string) bool {
	f, s := splitDots(filter), splitDots(subj)
	for i, tok := range f {
		if tok == ">" {
			return len(s) > i
		}
		if i >= len(s) || (tok != "*" && tok != s[i]) {
			return false
		}
	}
	return len(f) == len(s)
}

func splitDots(s string) []string {
	var out []string
	start := 0
	for i := 0; i < len(s); i++ {
		if s[i] == '.' {
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

func TestCollectorOfDeadLetter(t *testing.T) {
	tests := []struct {
		subject string
		want    string
		ok      bool
	}{
		{"crowsnest.dlq.collector.falco.node-1", "node-1", true},
		{"crowsnest.dlq.collector.unknown.n", "n", true},
		{"crowsnest.dlq.collector.falco", "", false}, // the unbound form of earlier versions
		{"crowsnest.dlq.collector.falco.a.b", "", false},
		{"crowsnest.dlq.collector..n", "", false},
		{"crowsnest.dlq.processor.falco", "", false},
		{"crowsnest.dlq.sink-es.falco.x", "", false},
		{"crowsnest.raw.falco.node-1.k", "", false},
		{"", "", false},
	}
	for _, tt := range tests {
		got, ok := CollectorOfDeadLetter(tt.subject)
		if got != tt.want || ok != tt.ok {
			t.Errorf("CollectorOfDeadLetter(%q) = %q, %v; want %q, %v", tt.subject, got, ok, tt.want, tt.ok)
		}
	}
}

func TestSourceOfSubject(t *testing.T) {
	tests := []struct {
		subject string
		want    string
		ok      bool
	}{
		{"crowsnest.raw.k8s_audit.node-1.k", "k8s_audit", true},
		{"crowsnest.raw.k8s_audit.3.node-1.k", "k8s_audit", true},
		{"crowsnest.events.falco", "falco", true},
		{"crowsnest.dlq.processor.docker", "docker", true},
		{"crowsnest.dlq.sink-es.json", "json", true},
		{"crowsnest.dlq.collector.falco.node-1", "falco", true},
		{"crowsnest.dlq.collector.falco", "falco", true}, // before collector ids were bound
		{"crowsnest.dlq.processor.falco.extra", "", false},
		{"crowsnest.dlq.collector.falco.node-1.extra", "", false},
		{"crowsnest.dlq.falco", "", false},
		{"crowsnest.raw.k8s_audit", "", false},
		{"crowsnest.raw.syslog.node-1", "", false},
		{"crowsnest.alerts.high", "", false},
		{"crowsnest.events.falco.extra", "", false},
		{"other.subject", "", false},
		{"", "", false},
	}
	for _, tt := range tests {
		got, ok := SourceOfSubject(tt.subject)
		if got != tt.want || ok != tt.ok {
			t.Errorf("SourceOfSubject(%q) = %q, %v; want %q, %v", tt.subject, got, ok, tt.want, tt.ok)
		}
	}
}

// FuzzSubjectParsers: SourceOfSubject and CollectorOfDeadLetter take any
// subject; they never panic, and what they return round-trips through the
// builders.
func FuzzSubjectParsers(f *testing.F) {
	for _, s := range []string{"crowsnest.dlq.collector.falco.node-1", "crowsnest.dlq.collector.falco", "crowsnest.dlq.processor.docker",
		"crowsnest.raw.k8s_audit.3.n.k", "crowsnest.events.json", "crowsnest.dlq..", "crowsnest.dlq.collector..x", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, subject string) {
		src, ok := SourceOfSubject(subject)
		if ok && !ValidSource(src) {
			t.Fatalf("SourceOfSubject(%q) = %q, not a source", subject, src)
		}
		c, ok := CollectorOfDeadLetter(subject)
		if !ok {
			return
		}
		if ValidateToken(c) != nil {
			t.Fatalf("CollectorOfDeadLetter(%q) = %q, not a token", subject, c)
		}
		source := strings.TrimPrefix(subject, DeadLetterSubjectPrefix+"."+CollectorStage+".")
		source = source[:strings.IndexByte(source, '.')]
		if rebuilt, err := CollectorDeadLetterSubject(source, c); err != nil || rebuilt != subject {
			t.Fatalf("%q parsed to (%q, %q), rebuilt as %q (%v)", subject, source, c, rebuilt, err)
		}
	})
}
