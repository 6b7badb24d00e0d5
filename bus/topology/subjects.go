package topology

import (
	"fmt"
	"strings"
)

// Subject prefixes. Every subject crowsnest publishes starts with one of these.
const (
	RawSubjectPrefix        = "crowsnest.raw"
	EventSubjectPrefix      = "crowsnest.events"
	AlertSubjectPrefix      = "crowsnest.alerts"
	DeadLetterSubjectPrefix = "crowsnest.dlq"
)

// Wildcards matching every subject of a class: the subjects of the events,
// alerts and dead-letter streams.
const (
	EventSubjects      = EventSubjectPrefix + ".>"
	AlertSubjects      = AlertSubjectPrefix + ".>"
	DeadLetterSubjects = DeadLetterSubjectPrefix + ".>"
)

// RawSubject is the subject a collector publishes raw records of source to:
// crowsnest.raw.<source>.<collector>.<key>. source must be one of Sources;
// collector must pass ValidateToken (run names through SanitizeToken first);
// key is KeyToken of the record's entity, which picks its partition (see
// partition.go). The collector token lets NATS permissions bind a collector
// to its own subjects (crowsnest.raw.<source>.<collector>.*).
func RawSubject(source, collector, key string) (string, error) {
	if !ValidSource(source) {
		return "", unknownSourceError(source)
	}
	if err := ValidateToken(collector); err != nil {
		return "", fmt.Errorf("raw subject for source %s: collector: %w", source, err)
	}
	if err := ValidateToken(key); err != nil {
		return "", fmt.Errorf("raw subject for source %s: key: %w", source, err)
	}
	return RawSubjectPrefix + "." + source + "." + collector + "." + key, nil
}

// RawSubjects is what source's raw stream captures from collectors:
// crowsnest.raw.<source>.*.* (collector, key). The stream stores each record
// under its partitioned form (RawPartitionSubjects).
func RawSubjects(source string) (string, error) {
	if !ValidSource(source) {
		return "", unknownSourceError(source)
	}
	return rawCaptureSubject(source), nil
}

// EventSubject is the subject the processor publishes normalized events of
// source to: crowsnest.events.<source>.
func EventSubject(source string) (string, error) {
	if !ValidSource(source) {
		return "", unknownSourceError(source)
	}
	return EventSubjectPrefix + "." + source, nil
}

// AlertSubject is the subject of alerts of level: crowsnest.alerts.<level>.
// Levels belong to the schemas module; here level need only be a valid token.
func AlertSubject(level string) (string, error) {
	if err := ValidateToken(level); err != nil {
		return "", fmt.Errorf("alert subject: level: %w", err)
	}
	return AlertSubjectPrefix + "." + level, nil
}

// DeadLetterSubject is the subject of records stage rejected:
// crowsnest.dlq.<stage>.<source>. stage is the rejecting stage ("processor",
// "sink-<name>"); collectors use CollectorDeadLetterSubject, and stage
// CollectorStage is refused here. source need only be a valid token, not a
// known source, so that a record whose source cannot be told can still be
// dead-lettered (use "unknown").
func DeadLetterSubject(stage, source string) (string, error) {
	if err := ValidateToken(stage); err != nil {
		return "", fmt.Errorf("dead-letter subject: stage: %w", err)
	}
	if stage == CollectorStage {
		return "", fmt.Errorf("dead-letter subject: stage %q: a collector's dead-letters carry its id (CollectorDeadLetterSubject)", stage)
	}
	if err := ValidateToken(source); err != nil {
		return "", fmt.Errorf("dead-letter subject: source: %w", err)
	}
	return DeadLetterSubjectPrefix + "." + stage + "." + source, nil
}

// CollectorDeadLetterSubject is the subject of records collector rejected:
// crowsnest.dlq.collector.<source>.<collector>. The trailing collector token
// lets NATS permissions bind a collector to its own dead-letters
// (crowsnest.dlq.collector.*.<collector>), as RawSubject does for records,
// so one compromised node cannot dead-letter in another's name. source need
// only be a valid token, as in DeadLetterSubject. (Dead-letters written
// before the token existed, crowsnest.dlq.collector.<source>, stay in
// CROWSNEST_DLQ and decode with no bound collector.)
func CollectorDeadLetterSubject(source, collector string) (string, error) {
	if err := ValidateToken(source); err != nil {
		return "", fmt.Errorf("collector dead-letter subject: source: %w", err)
	}
	if err := ValidateToken(collector); err != nil {
		return "", fmt.Errorf("collector dead-letter subject for source %s: collector: %w", source, err)
	}
	return DeadLetterSubjectPrefix + "." + CollectorStage + "." + source + "." + collector, nil
}

// CollectorOfDeadLetter returns the collector a collector dead-letter
// subject is bound to (crowsnest.dlq.collector.<source>.<collector>), and
// false for any other subject, including the unbound form of earlier
// versions.
func CollectorOfDeadLetter(subject string) (string, bool) {
	rest, ok := strings.CutPrefix(subject, DeadLetterSubjectPrefix+"."+CollectorStage+".")
	if !ok {
		return "", false
	}
	source, collector, ok := strings.Cut(rest, ".")
	if !ok || ValidateToken(source) != nil || ValidateToken(collector) != nil {
		return "", false
	}
	return collector, true
}

// ErrUnknownSource is wrapped by errors about a source not in Sources.
var ErrUnknownSource = fmt.Errorf("unknown source (want one of %v)", Sources())

func unknownSourceError(source string) error {
	return fmt.Errorf("source %q: %w", source, ErrUnknownSource)
}

// SourceOfSubject returns the source a raw, event or dead-letter subject
// names (crowsnest.raw.<source>.…, crowsnest.events.<source>,
// crowsnest.dlq.<stage>.<source>, crowsnest.dlq.collector.<source>.<collector>),
// and false for any other subject or a source that is not one of Sources.
func SourceOfSubject(subject string) (string, bool) {
	var src string
	switch {
	case strings.HasPrefix(subject, RawSubjectPrefix+"."):
		rest := subject[len(RawSubjectPrefix)+1:]
		i := strings.IndexByte(rest, '.')
		if i < 0 {
			return "", false
		}
		src = rest[:i]
	case strings.HasPrefix(subject, EventSubjectPrefix+"."):
		src = subject[len(EventSubjectPrefix)+1:]
	case strings.HasPrefix(subject, DeadLetterSubjectPrefix+"."):
		// <stage>.<source>, or collector.<source>.<collector>.
		tokens := strings.Split(subject[len(DeadLetterSubjectPrefix)+1:], ".")
		switch {
		case len(tokens) == 2:
		case len(tokens) == 3 && tokens[0] == CollectorStage:
		default:
			return "", false
		}
		src = tokens[1]
	default:
		return "", false
	}
	if !ValidSource(src) {
		return "", false
	}
	return src, true
}
