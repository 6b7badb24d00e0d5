package publish

import (
	"strconv"

	"github.com/nats-io/nats.go"

	"github.com/crowsnest-siem/crowsnest/bus/headers"
	"github.com/crowsnest-siem/crowsnest/bus/msgid"
)

// Stage is the dead-letter stage of records a collector rejects:
// crowsnest.dlq.collector.<source>.
const Stage = "collector"

// maxErrorHeader caps the Crowsnest-Error header: one line, bounded.
const maxErrorHeader = 1024

// toDeadLetter turns it's message into the dead-letter record of rec: a
// sample of the original bytes as body, the reason and provenance in headers,
// and an id derived from the original so that dead-lettering the same record
// twice stores it once.
//
// TODO(bus/deadletter): build the message with bus/deadletter once it lands,
// so that the format is declared once.
func (p *Publisher) toDeadLetter(it *item, rec Record, reason string) {
	sample := rec.Data
	truncated := uint64(len(sample)) > uint64(p.cfg.DeadLetterSampleBytes)
	if truncated {
		sample = sample[:p.cfg.DeadLetterSampleBytes]
	}
	h := make(nats.Header, 12)
	h[headers.MsgID] = []string{msgid.DeadLetter(Stage, rec.ID)}
	h[headers.Source] = it.src.hdr
	h[headers.Collector] = p.collectorHdr
	h[headers.Node] = p.nodeHdr
	h[headers.Observed] = []string{headers.FormatTime(rec.Observed)}
	h[headers.Error] = []string{oneLine(reason, maxErrorHeader)}
	h[headers.Stage] = []string{Stage}
	h[headers.OriginalSubject] = []string{it.src.subject}
	h[headers.OriginalMsgID] = []string{rec.ID}
	if truncated {
		h[headers.Truncated] = []string{"true"}
		h[headers.OriginalSize] = []string{strconv.Itoa(len(rec.Data))}
	}
	it.msg = nats.Msg{Subject: it.src.dlqSubj, Header: h, Data: sample}
	it.deadLetter = true
	p.log.Warn("record dead-lettered", "source", it.src.name, "event_id", rec.ID,
		"subject", it.src.dlqSubj, "reason", reason)
}

// oneLine makes s a single header line of at most n bytes.
func oneLine(s string, n int) string {
	b := []byte(s)
	for i, c := range b {
		if c == '\r' || c == '\n' {
			b[i] = ' '
		}
	}
	if len(b) > n {
		b = b[:n]
	}
	return string(b)
}
