package headers

import (
	"fmt"
	"time"
)

// Header names. Values are single-line strings; see docs/ARCHITECTURE.md.
const (
	// MsgID is the natural identity of a message (bus/msgid). JetStream drops a
	// second message with the same id inside the stream's duplicate window.
	// It equals jetstream.MsgIDHeader; it is repeated here so that readers of
	// the contract find every header in one list.
	MsgID = "Nats-Msg-Id"

	// Source is the source name (k8s_audit, falco, ...) on raw, event and
	// dead-letter messages.
	Source = "Crowsnest-Source"
	// Collector is the collector identity that published a raw record.
	Collector = "Crowsnest-Collector"
	// Node is the node or pod the collector runs on.
	Node = "Crowsnest-Node"
	// Observed is when the collector read the record, formatted by FormatTime.
	Observed = "Crowsnest-Observed"

	// Error is why a record was dead-lettered: one line, length-capped.
	Error = "Crowsnest-Error"
	// Stage is the stage that rejected a record (processor, sink-<name>).
	Stage = "Crowsnest-Stage"
	// DeliveryCount is how many times the rejecting stage received the record.
	DeliveryCount = "Crowsnest-Delivery-Count"
	// OriginalSubject is the subject the rejected record was read from.
	OriginalSubject = "Crowsnest-Original-Subject"
	// OriginalMsgID is the Nats-Msg-Id the rejected record carried, so that a
	// replay can republish it under its own identity.
	OriginalMsgID = "Crowsnest-Original-Msg-Id"
	// Truncated is "true" on a dead-letter record whose body was cut to the
	// size cap; OriginalSize then holds the size before the cut.
	Truncated = "Crowsnest-Truncated"
	// OriginalSize is the byte length of a truncated dead-letter body before
	// truncation, in decimal.
	OriginalSize = "Crowsnest-Original-Size"
)

// TimeLayout is the layout of time-valued headers: RFC 3339 with nanoseconds.
const TimeLayout = time.RFC3339Nano

// FormatTime formats t for a time-valued header (Crowsnest-Observed) in UTC,
// so that values sort and compare as strings across nodes in any time zone.
func FormatTime(t time.Time) string {
	return t.UTC().Format(TimeLayout)
}

// ParseTime parses a time-valued header written by FormatTime (or any
// RFC 3339 value).
func ParseTime(v string) (time.Time, error) {
	t, err := time.Parse(TimeLayout, v)
	if err != nil {
		return time.Time{}, fmt.Errorf("parse time header %q: %w", v, err)
	}
	return t, nil
}
