package normalize_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/crowsnest-siem/crowsnest/daemon/config"
	"github.com/crowsnest-siem/crowsnest/processor/normalize"
	"github.com/crowsnest-siem/crowsnest/schemas"
)

func TestLines(t *testing.T) {
	cfg := normalize.NewDefaultConfig()
	cfg.MaxRecordBytes = 2 * config.KiB
	cfg.MaxOriginalBytes = 1 * config.KiB
	cfg.MaxJSONBytes = 1 * config.KiB
	n := newNormalizer(t, cfg)
	second := strings.Replace(auditEvent, "0b6a2f7e", "2b6a2f7e", 1)
	batch := `{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":[` + auditEvent + `,` + second + `]}`
	input := strings.Join([]string{
		auditEvent,        // 1 ok
		"",                // 2 blank: skipped
		"not json at all", // 3 bad
		batch,             // 4 two events
		`{"a":"` + strings.Repeat("x", 5000) + `"}`, // 5 longer than max_record_bytes
		"   \t ",          // 6 blank
		auditEvent + "\r", // 7 ok (CRLF)
		falcoAlert,        // 8 wrong shape for k8s_audit
		second,            // 9 ok, no trailing newline
	}, "\n")
	var out bytes.Buffer
	var badLines []string
	ok, bad, err := normalize.Lines(context.Background(), strings.NewReader(input), n, "k8s_audit", &out, func(line int, err error) {
		r, _ := normalize.RejectReason(err)
		badLines = append(badLines, fmt.Sprintf("%d:%s", line, r))
	})
	if err != nil {
		t.Fatal(err)
	}
	if ok != 5 || bad != 3 {
		t.Errorf("ok %d bad %d, want 5 and 3", ok, bad)
	}
	if got, want := strings.Join(badLines, " "), "3:invalid_json 5:too_large 8:not_k8s_audit"; got != want {
		t.Errorf("bad lines %q, want %q", got, want)
	}
	// Each output line is exactly what the Elasticsearch sink indexes.
	var ev schemas.Event
	var want []byte
	for _, in := range []string{auditEvent, auditEvent, second, auditEvent, second} {
		if err := n.Normalize(&normalize.Record{Source: "k8s_audit", Data: []byte(in)}, &ev); err != nil {
			t.Fatal(err)
		}
		want = append(ev.AppendJSON(want), '\n')
	}
	// The batch's parts carry their own text as event.original, and so do
	// the plain lines: the expected output matches part for part.
	if !bytes.Equal(out.Bytes(), want) {
		t.Errorf("output differs:\n got %s\nwant %s", out.Bytes(), want)
	}
}

func TestLinesLongLinesStayBounded(t *testing.T) {
	cfg := normalize.NewDefaultConfig()
	cfg.MaxRecordBytes = 1 * config.KiB
	cfg.MaxOriginalBytes = 1 * config.KiB
	cfg.MaxJSONBytes = 1 * config.KiB
	n := newNormalizer(t, cfg)
	huge := strings.Repeat("x", 10<<20) // 10 MiB without a newline, then a good line
	var out bytes.Buffer
	ok, bad, err := normalize.Lines(context.Background(), strings.NewReader(huge+"\n"+auditEvent+"\n"), n, "k8s_audit", &out, nil)
	if err != nil || ok != 1 || bad != 1 {
		t.Errorf("ok %d bad %d err %v", ok, bad, err)
	}
}

func TestLinesStopsOnContextAndWriteErrors(t *testing.T) {
	n := newNormalizer(t, normalize.NewDefaultConfig())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := normalize.Lines(ctx, strings.NewReader(auditEvent), n, "k8s_audit", &bytes.Buffer{}, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context: %v", err)
	}
	input := strings.Repeat(auditEvent+"\n", 2000) // more than the write buffer holds
	_, _, err := normalize.Lines(context.Background(), strings.NewReader(input), n, "k8s_audit", failingWriter{}, nil)
	if err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("write error not returned: %v", err)
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }
