package publish

import (
	"fmt"

	"github.com/nats-io/nats.go"

	"github.com/crowsnest-siem/crowsnest/bus/deadletter"
	"github.com/crowsnest-siem/crowsnest/bus/headers"
	"github.com/crowsnest-siem/crowsnest/bus/topology"
)

// Stage is the dead-letter stage of records a collector rejects:
// crowsnest.dlq.collector.<source>.<collector>, the collector's id bound by
// its NATS permissions like its raw subjects.
const Stage = topology.CollectorStage

// toDeadLetter turns it's message into the dead-letter record of rec
// (bus/deadletter's format): a sample of the original bytes as body, the
// reason and provenance in headers, and an id derived from the original so
// that dead-lettering the same record twice stores it once. It is published
// through the same in-flight and retry machinery as a raw record, and rec's
// Ack completes when JetStream stored it.
// subject is the raw subject the record was (or would have been) published to.
func (p *Publisher) toDeadLetter(it *item, rec Record, subject, reason string) error {
	m, err := deadletter.Encode(deadletter.Record{
		Stage:           Stage,
		Collector:       p.cfg.CollectorID,
		Source:          it.src.name,
		OriginalSubject: subject,
		OriginalID:      rec.ID,
		Reason:          reason,
		Data:            rec.Data,
		Header: nats.Header{
			headers.Collector: p.collectorHdr,
			headers.Node:      p.nodeHdr,
			headers.Observed:  []string{headers.FormatTime(rec.Observed)},
		},
	}, p.sampleBytes)
	if err != nil {
		// Only an invalid stage or collector token fails; both were
		// validated when the publisher was made.
		return fmt.Errorf("dead-letter record %s (%s): %w", rec.ID, reason, err)
	}
	it.msg = *m
	it.deadLetter = true
	p.log.Warn("record dead-lettered", "source", it.src.name, "event_id", rec.ID,
		"subject", m.Subject, "reason", reason)
	return nil
}
