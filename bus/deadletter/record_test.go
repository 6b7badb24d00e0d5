package deadletter

import (
	"bytes"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/crowsnest-siem/crowsnest/bus/headers"
	"github.com/crowsnest-siem/crowsnest/bus/msgid"
)

func TestEncode(t *testing.T) {
	prov := nats.Header{}
	prov.Set(headers.Collector, "node-1")
	prov.Set(headers.Node, "ip-10-0-0-1")
	prov.Set(headers.Observed, "2025-01-02T03:04:05.000000006Z")
	prov.Set("Nats-Expected-Stream", "X") // must not be copied: it would break the publish

	tests := []struct {
		name    string
		rec     Record
		maxBody int
		subject string
		hdr     map[string]string // expected header values; "" means absent
		body    string
	}{
		{
			name: "processor rejection",
			rec: Record{Stage: "processor", Source: "falco", OriginalSubject: "crowsnest.raw.falco.node-1",
				OriginalID: "falco-abc", DeliveryCount: 3, Reason: "parse: unexpected end of JSON input",
				Data: []byte(`{"broken"`), Header: prov},
			subject: "crowsnest.dlq.processor.falco",
			hdr: map[string]string{
				headers.MsgID: "dlq-processor-falco-abc", headers.Stage: "processor", headers.Source: "falco",
				headers.Error: "parse: unexpected end of JSON input", headers.DeliveryCount: "3",
				headers.OriginalSubject: "crowsnest.raw.falco.node-1", headers.OriginalMsgID: "falco-abc",
				headers.Collector: "node-1", headers.Node: "ip-10-0-0-1", headers.Observed: "2025-01-02T03:04:05.000000006Z",
				headers.Truncated: "", headers.OriginalSize: "", "Nats-Expected-Stream": "",
			},
			body: `{"broken"`,
		},
		{
			name:    "multi-line reason, truncated body",
			rec:     Record{Stage: "sink-es", Source: "k8s_audit", OriginalID: "x-ResponseComplete", Reason: "mapper_parsing_exception:\r\n\tfield [a]\n", Data: []byte("0123456789")},
			maxBody: 4,
			subject: "crowsnest.dlq.sink-es.k8s_audit",
			hdr: map[string]string{
				headers.Error: "mapper_parsing_exception:   field [a]", headers.Truncated: "true", headers.OriginalSize: "10",
				headers.MsgID: "dlq-sink-es-x-ResponseComplete",
			},
			body: "0123",
		},
		{
			name:    "no id: content id over the whole body; no source; no reason",
			rec:     Record{Stage: "processor", Data: []byte("abcdef")},
			maxBody: 2,
			subject: "crowsnest.dlq.processor.unknown",
			hdr: map[string]string{
				headers.MsgID: "dlq-processor-" + msgid.FromContent("unknown", []byte("abcdef")), headers.Source: "unknown",
				headers.Error: "no reason given", headers.DeliveryCount: "0", headers.OriginalMsgID: "",
			},
			body: "ab",
		},
		{
			name: "collector rejection: its id in the subject and the header",
			rec: Record{Stage: "collector", Collector: "node-1", Source: "tetragon", OriginalID: "t-1", Reason: "too big",
				Data: []byte("x"), Header: nats.Header{headers.Collector: []string{"node-2"}}},
			subject: "crowsnest.dlq.collector.tetragon.node-1",
			hdr:     map[string]string{headers.Collector: "node-1", headers.Stage: "collector", headers.MsgID: "dlq-collector-t-1"},
			body:    "x",
		},
		{
			name:    "odd source is sanitized",
			rec:     Record{Stage: "processor", Source: "My.Source", OriginalID: "i"},
			subject: "crowsnest.dlq.processor.my_source",
			hdr:     map[string]string{headers.Source: "my_source"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Encode(tt.rec, tt.maxBody)
			if err != nil {
				t.Fatal(err)
			}
			if m.Subject != tt.subject {
				t.Errorf("subject %q, want %q", m.Subject, tt.subject)
			}
			for k, want := range tt.hdr {
				if got := m.Header.Get(k); got != want {
					t.Errorf("header %s = %q, want %q", k, got, want)
				}
			}
			if string(m.Data) != tt.body {
				t.Errorf("body %q, want %q", m.Data, tt.body)
			}
		})
	}
	if _, err := Encode(Record{Stage: "bad.stage"}, 0); err == nil {
		t.Error("Encode with an invalid stage: want error")
	}
	for _, c := range []string{"", "a.b", ">"} {
		if _, err := Encode(Record{Stage: "collector", Collector: c, Source: "falco"}, 0); err == nil {
			t.Errorf("Encode a collector dead-letter with collector %q: want error", c)
		}
	}
}

// TestDecodeCollectorFromSubjectOnly: the bound collector comes from the
// subject, which permissions enforce, never from the header, which the
// sender writes; the unbound subject of earlier versions decodes with none.
func TestDecodeCollectorFromSubjectOnly(t *testing.T) {
	hdr := func() nats.Header {
		h := nats.Header{}
		h.Set(headers.Stage, "collector")
		h.Set(headers.Collector, "node-2")
		return h
	}
	tests := []struct {
		subject string
		want    string
	}{
		{"crowsnest.dlq.collector.falco.node-1", "node-1"},
		{"crowsnest.dlq.collector.falco", ""},
	}
	for _, tt := range tests {
		r, err := Decode(&nats.Msg{Subject: tt.subject, Header: hdr()})
		if err != nil {
			t.Fatalf("%s: %v", tt.subject, err)
		}
		if r.Collector != tt.want {
			t.Errorf("%s: collector %q, want %q", tt.subject, r.Collector, tt.want)
		}
		if r.Header.Get(headers.Collector) != "node-2" {
			t.Errorf("%s: the provenance header is not kept as sent", tt.subject)
		}
	}
}

func TestReasonIsCappedOnARuneBoundary(t *testing.T) {
	long := strings.Repeat("é", MaxReasonLen) // 2 bytes each
	m, err := Encode(Record{Stage: "processor", Reason: long, OriginalID: "i"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	got := m.Header.Get(headers.Error)
	if len(got) > MaxReasonLen || !strings.HasSuffix(got, "…") || !strings.HasPrefix(got, "éé") {
		t.Fatalf("reason %d bytes, suffix %q", len(got), got[len(got)-6:])
	}
	if !strings.ContainsRune(got, 'é') || strings.ContainsRune(got, '\uFFFD') {
		t.Fatal("reason cut inside a rune")
	}
}

func TestDecodeRoundTrip(t *testing.T) {
	h := nats.Header{}
	h.Set(headers.Node, "n1")
	in := Record{Stage: "processor", Source: "docker", OriginalSubject: "crowsnest.raw.docker.c", OriginalID: "docker-1",
		DeliveryCount: 5, Reason: "boom", Data: bytes.Repeat([]byte("z"), 100), Header: h}
	m, err := Encode(in, 10)
	if err != nil {
		t.Fatal(err)
	}
	out, err := Decode(m)
	if err != nil {
		t.Fatal(err)
	}
	if out.ID != "dlq-processor-docker-1" || out.Stage != in.Stage || out.Source != in.Source || out.OriginalSubject != in.OriginalSubject ||
		out.OriginalID != in.OriginalID || out.DeliveryCount != 5 || out.Reason != "boom" || !out.Truncated ||
		out.OriginalSize != 100 || len(out.Data) != 10 || out.Header.Get(headers.Node) != "n1" {
		t.Fatalf("decoded %+v", out)
	}
}

func TestDecodeRejects(t *testing.T) {
	okHeader := func() nats.Header {
		h := nats.Header{}
		h.Set(headers.Stage, "processor")
		return h
	}
	tests := []struct {
		name string
		msg  *nats.Msg
	}{
		{"nil", nil},
		{"other subject", &nats.Msg{Subject: "crowsnest.events.falco", Header: okHeader()}},
		{"no stage", &nats.Msg{Subject: "crowsnest.dlq.processor.falco", Header: nats.Header{}}},
		{"bad count", &nats.Msg{Subject: "crowsnest.dlq.processor.falco", Header: func() nats.Header {
			h := okHeader()
			h.Set(headers.DeliveryCount, "many")
			return h
		}()}},
		{"truncated without size", &nats.Msg{Subject: "crowsnest.dlq.processor.falco", Header: func() nats.Header {
			h := okHeader()
			h.Set(headers.Truncated, "true")
			return h
		}()}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Decode(tt.msg); err == nil {
				t.Fatal("want error")
			}
		})
	}
}

func FuzzEncodeDecode(f *testing.F) {
	f.Add("processor", "falco", "id-1", "reason", []byte("data"), uint64(1), 0)
	f.Add("sink-x", "", "", "a\r\nb\x00c", []byte{}, uint64(0), 1)
	f.Add("p", "a.b c", "id\n", strings.Repeat("€", 600), []byte("0123456789"), uint64(1<<63), 3)
	f.Add("collector", "falco", "id-2", "too big", []byte("data"), uint64(0), 0)
	f.Fuzz(func(t *testing.T, stage, source, id, reason string, data []byte, count uint64, maxBody int) {
		in := Record{Stage: stage, Source: source, OriginalID: id, Reason: reason, Data: data, DeliveryCount: count, Collector: id}
		m, err := Encode(in, maxBody)
		if err != nil {
			return // invalid stage
		}
		for k, vs := range m.Header {
			for _, v := range vs {
				if strings.ContainsAny(v, "\r\n") || v != strings.TrimSpace(v) {
					t.Fatalf("header %s = %q is not header-safe", k, v)
				}
			}
		}
		if err := msgid.Validate(m.Header.Get(headers.MsgID)); err != nil {
			t.Fatalf("record id: %v", err)
		}
		if len(m.Header.Get(headers.Error)) > MaxReasonLen {
			t.Fatalf("reason %d bytes", len(m.Header.Get(headers.Error)))
		}
		out, err := Decode(m)
		if err != nil {
			t.Fatalf("Decode(Encode(%+v)): %v", in, err)
		}
		if stage == "collector" && out.Collector != id {
			t.Fatalf("collector %q decoded as %q", id, out.Collector)
		}
		if out.DeliveryCount != count || out.Stage != stage || !bytes.HasPrefix(data, out.Data) {
			t.Fatalf("round trip %+v -> %+v", in, out)
		}
		if out.Truncated != (len(out.Data) < len(data)) {
			t.Fatalf("truncated=%v with %d of %d bytes", out.Truncated, len(out.Data), len(data))
		}
	})
}
