package spool

import (
	"bytes"
	"context"
	"encoding/binary"
	"hash/crc32"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/crowsnest-siem/crowsnest/bus/headers"
	"github.com/crowsnest-siem/crowsnest/bus/topology"
	"github.com/crowsnest-siem/crowsnest/collectors/internal/bustest"
	"github.com/crowsnest-siem/crowsnest/collectors/publish"
)

// fullRecord sets every field of publish.Record to a value that is not its
// zero, by reflection, so that a field added to Record and forgotten by the
// frame fails TestFrameCarriesEveryRecordField.
func fullRecord(t testing.TB) publish.Record {
	t.Helper()
	rec := publish.Record{Source: topology.SourceFalco, ID: "falco-0123"}
	v := reflect.ValueOf(&rec).Elem()
	for i := range v.NumField() {
		f, name := v.Field(i), v.Type().Field(i).Name
		if !f.IsZero() {
			continue
		}
		switch f.Interface().(type) {
		case string:
			f.SetString("value of " + name)
		case []byte:
			f.SetBytes([]byte(`{"field":"` + name + `"}`))
		case time.Time:
			f.Set(reflect.ValueOf(time.Unix(1700000000, 123456789)))
		default:
			t.Fatalf("publish.Record.%s has type %s, which the spool frame does not know: teach frame.go (a new payload version) and this test", name, f.Type())
		}
	}
	return rec
}

func TestFrameCarriesEveryRecordField(t *testing.T) {
	want := fullRecord(t)
	b, err := appendFrame(nil, want)
	if err != nil {
		t.Fatal(err)
	}
	got, n, torn := parseFrame(b)
	if n != len(b) || torn {
		t.Fatalf("parseFrame = n %d torn %v, want %d", n, torn, len(b))
	}
	if !got.Observed.Equal(want.Observed) {
		t.Errorf("Observed %v, want %v", got.Observed, want.Observed)
	}
	got.Observed = want.Observed
	if !reflect.DeepEqual(got, want) {
		t.Errorf("round trip lost fields:\n got %+v\nwant %+v", got, want)
	}
}

func TestFrameRejects(t *testing.T) {
	good, err := appendFrame(nil, fullRecord(t))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		edit func(b []byte) []byte
		torn bool
	}{
		{"short header", func(b []byte) []byte { return b[:headerLen-1] }, true},
		{"short payload", func(b []byte) []byte { return b[:len(b)-1] }, true},
		{"bad magic", func(b []byte) []byte { b[0] ^= 0xff; return b }, false},
		{"flipped payload byte", func(b []byte) []byte { b[len(b)-1] ^= 1; return b }, false},
		{"unknown version", func(b []byte) []byte { b[headerLen] = 3; return reseal(b) }, false},
		{"key length past the end", func(b []byte) []byte {
			// The key length byte follows version, source, id and observed.
			at := headerLen + 1 + 1 + len(topology.SourceFalco) + 1 + len("falco-0123") + 8
			b[at] = 0x7f
			return reseal(b[:at+4])
		}, false},
		{"unknown source", func(b []byte) []byte { b[headerLen+2] = 'X'; return reseal(b) }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := tt.edit(bytes.Clone(good))
			_, n, torn := parseFrame(b)
			if n != 0 || torn != tt.torn {
				t.Errorf("parseFrame = n %d torn %v, want 0 torn %v", n, torn, tt.torn)
			}
		})
	}
	long := fullRecord(t)
	long.Key = string(bytes.Repeat([]byte("k"), maxText+1))
	if _, err := appendFrame(nil, long); err == nil {
		t.Error("appendFrame took a key longer than 64 KiB")
	}
}

// reseal rewrites a frame's length and checksum after an edit, so that the
// decoder, not the CRC, must catch it.
func reseal(b []byte) []byte {
	p := b[headerLen:]
	binary.LittleEndian.PutUint32(b[2:], uint32(len(p)))
	binary.LittleEndian.PutUint32(b[6:], crc32.Checksum(p, castagnoli))
	return b
}

// appendFrameV1 writes the version 1 frame that spools written before
// version 2 hold: the fuzz target compares what it decodes against it.
func appendFrameV1(dst []byte, rec publish.Record) []byte {
	start := len(dst)
	dst = append(dst, magic0, magic1, 0, 0, 0, 0, 0, 0, 0, 0)
	dst = append(dst, payloadV1, byte(len(rec.Source)))
	dst = append(dst, rec.Source...)
	dst = append(dst, byte(len(rec.ID)))
	dst = append(dst, rec.ID...)
	dst = binary.LittleEndian.AppendUint64(dst, uint64(rec.Observed.UnixNano()))
	dst = append(dst, rec.Data...)
	return append(dst[:start], reseal(dst[start:])...)
}

// v1Golden is what testdata/v1/00000000000000000001.seg holds: a segment
// written by the version 1 spool (commit d9fc3ab), kept as it was.
var v1Golden = []publish.Record{
	{Source: "k8s_audit", ID: "0a1b2c3d-4e5f-6789-abcd-ef0123456789-ResponseComplete", Observed: time.Date(2025, 6, 1, 12, 0, 0, 123456789, time.UTC),
		Data: []byte(`{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"0a1b2c3d-4e5f-6789-abcd-ef0123456789","stage":"ResponseComplete","verb":"get"}`)},
	{Source: "falco", ID: "falco-2f6a", Observed: time.Date(2025, 6, 1, 12, 0, 1, 0, time.UTC),
		Data: []byte(`{"output":"Terminal shell in container","priority":"Notice","rule":"Terminal shell in container"}`)},
	{Source: "auditd", ID: "auditd-node1-1717243202.000-42", Observed: time.Date(2025, 6, 1, 12, 0, 2, 0, time.UTC),
		Data: []byte("type=SYSCALL msg=audit(1717243202.000:42): arch=c000003e syscall=59 success=yes exit=0\ntype=EOE msg=audit(1717243202.000:42):")},
}

func TestVersion1SegmentDecodes(t *testing.T) {
	b, err := os.ReadFile("testdata/v1/00000000000000000001.seg")
	if err != nil {
		t.Fatal(err)
	}
	var got []publish.Record
	end, torn := scan(b, 0, func(r publish.Record, _ int) bool { got = append(got, r); return true },
		func(from, to int) { t.Errorf("gap [%d,%d) in a good version 1 segment", from, to) })
	if end != len(b) || torn {
		t.Fatalf("scan ended at %d of %d (torn %v)", end, len(b), torn)
	}
	if len(got) != len(v1Golden) {
		t.Fatalf("%d records, want %d", len(got), len(v1Golden))
	}
	for i, want := range v1Golden {
		g := got[i]
		if g.Source != want.Source || g.ID != want.ID || !g.Observed.Equal(want.Observed) || !bytes.Equal(g.Data, want.Data) || g.Key != "" || g.DeadLetter != "" {
			t.Errorf("record %d = %+v, want %+v", i, g, want)
		}
		if !bytes.Equal(appendFrameV1(nil, want), b[:len(appendFrameV1(nil, want))]) {
			t.Errorf("record %d: appendFrameV1 does not reproduce the golden bytes", i)
		}
		b = b[len(appendFrameV1(nil, want)):]
	}
}

// TestVersion1SpoolReplays: a spool directory left by the version 1 spool is
// replayed by this one, each record with its id and observed time.
func TestVersion1SpoolReplays(t *testing.T) {
	dir := t.TempDir()
	seg, err := os.ReadFile("testdata/v1/00000000000000000001.seg")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, segName(1)), seg, 0o600); err != nil {
		t.Fatal(err)
	}
	b := bustest.Start(t)
	sp := open(t, testConfig(dir))
	pub := b.Publisher(t, bustest.PublishConfig())
	replay(t, sp, pub, b.NC)
	waitEmpty(t, sp)
	for _, tt := range []struct {
		stream string
		want   publish.Record
	}{
		{bustest.StreamK8sAudit, v1Golden[0]},
		{bustest.StreamFalco, v1Golden[1]},
		{bustest.StreamAuditd, v1Golden[2]},
	} {
		ms := b.WaitMessages(t, tt.stream, 1, 10*time.Second)
		m := ms[0]
		if m.ID != tt.want.ID || !bytes.Equal(m.Data, tt.want.Data) || m.Header.Get(headers.Observed) != headers.FormatTime(tt.want.Observed) {
			t.Errorf("%s: got id %s observed %s data %q", tt.stream, m.ID, m.Header.Get(headers.Observed), m.Data)
		}
	}
}

// TestDeadLetterSurvivesTheSpool: a record the source rejected, spooled
// while NATS is away, is replayed to the dead-letter stream with its reason,
// not to the raw stream.
func TestDeadLetterSurvivesTheSpool(t *testing.T) {
	b := bustest.Start(t)
	sp := open(t, testConfig(t.TempDir()))
	bad := publish.Record{Source: topology.SourceK8sAudit, ID: "line-at-4096", Data: []byte("not json {"),
		DeadLetter: "line 7: invalid JSON", Key: "default/web-0", Observed: time.Unix(1700000000, 0)}
	if err := sp.Put(context.Background(), bad); err != nil {
		t.Fatal(err)
	}
	if err := sp.Put(context.Background(), rec(1)); err != nil {
		t.Fatal(err)
	}
	pub := b.Publisher(t, bustest.PublishConfig())
	replay(t, sp, pub, b.NC)
	waitEmpty(t, sp)
	dlq := b.WaitMessages(t, bustest.StreamDLQ, 1, 10*time.Second)
	if got := dlq[0].Header.Get(headers.Error); got != bad.DeadLetter {
		t.Errorf("dead-letter reason %q, want %q", got, bad.DeadLetter)
	}
	if got := dlq[0].Header.Get(headers.OriginalMsgID); got != bad.ID {
		t.Errorf("dead-letter original id %q, want %q", got, bad.ID)
	}
	raw := b.WaitMessages(t, bustest.StreamK8sAudit, 1, 10*time.Second)
	if len(raw) != 1 || raw[0].ID != rec(1).ID {
		t.Errorf("raw stream holds %v, want only %s", bustest.IDs(raw), rec(1).ID)
	}
}
