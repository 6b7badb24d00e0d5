package topology

import (
	"fmt"
	"strings"
)

// Stream and bucket names.
const (
	// RawStreamPrefix prefixes the per-source raw streams: CROWSNEST_RAW_K8S_AUDIT, ...
	RawStreamPrefix  = "CROWSNEST_RAW_"
	EventsStream     = "CROWSNEST_EVENTS"
	AlertsStream     = "CROWSNEST_ALERTS"
	DeadLetterStream = "CROWSNEST_DLQ"

	// StateBucket is the key-value bucket of processor state (correlation
	// windows, entity cache checkpoints). JetStream backs it with the stream
	// "KV_" + StateBucket.
	StateBucket = "crowsnest-state"
	// StateBucketStream is the stream behind StateBucket.
	StateBucketStream = "KV_" + StateBucket

	// ProcessorsBucket is the key-value bucket where processor replicas keep
	// their membership leases (one key per live replica, expiring when not
	// renewed), from which each computes which partitions it owns. The
	// processor creates it with its lease as the bucket's TTL
	// (ProcessorsBucketConfig).
	ProcessorsBucket = "crowsnest-processors"
)

// Consumer names.
const (
	// ProcessorConsumer prefixes the durable names of the processor's pull
	// consumers, one per partition of every raw stream (ProcessorConsumerName).
	ProcessorConsumer = "processor"
	// SinkConsumerPrefix prefixes a sink's durable consumer: sink-<name>.
	SinkConsumerPrefix = "sink-"
	// ProcessorStage is the stage name the processor dead-letters under.
	ProcessorStage = "processor"
	// CollectorStage is the stage name collectors dead-letter under, with
	// their id in the subject (CollectorDeadLetterSubject).
	CollectorStage = "collector"
)

// RawStream is the name of source's raw stream: CROWSNEST_RAW_<SOURCE>.
func RawStream(source string) (string, error) {
	if !ValidSource(source) {
		return "", unknownSourceError(source)
	}
	return RawStreamPrefix + strings.ToUpper(source), nil
}

// SinkConsumerName is the durable consumer name of sink name: sink-<name>.
// name must pass ValidateToken. It is also the sink's dead-letter stage, so a
// record a sink rejects lands on crowsnest.dlq.sink-<name>.<source>.
func SinkConsumerName(name string) (string, error) {
	if err := ValidateToken(name); err != nil {
		return "", fmt.Errorf("sink consumer name: %w", err)
	}
	return SinkConsumerPrefix + name, nil
}
