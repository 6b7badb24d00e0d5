package topology

import (
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
)

// Partitioning of the raw streams.
//
// A collector publishes to crowsnest.raw.<source>.<collector>.<key>, where key
// is KeyToken of the record's entity (a namespace, a user, a node). Each raw
// stream's subject transform has the server insert the partition number it
// computes from the key token alone:
//
//	crowsnest.raw.<source>.*.*  →  crowsnest.raw.<source>.<p>.<collector>.<key>
//
// so that the same entity lands in the same partition of every raw stream
// whatever collector sent it, and a processor replica owning partition p on
// every stream sees all of an entity's records, each source in order.
// Collectors cannot choose a partition: the stream captures only the
// two-token form and the number is the server's.

// DefaultPartitions is the default number of partitions per raw stream: a few
// per expected replica, so that hand-overs move small shares.
const DefaultPartitions = 8

// MaxPartitions bounds Config.Partitions: each partition is one consumer per
// raw stream.
const MaxPartitions = 256

// ProcessorPriorityGroup is the priority group of the processor's partition
// consumers when pinned_ttl is set: they then pin one client at a time
// (PriorityPolicyPinned), a server-side guard on top of the processor's
// partition claims.
const ProcessorPriorityGroup = "owner"

// KeyToken turns an entity into the subject token that partitions its
// records: 16 hex digits of its FNV-1a hash. The entity itself never appears
// in a subject: it is user data (names, users) that may contain anything, and
// subjects are visible to every NATS permission check and monitor.
func KeyToken(entity string) string {
	h := fnv.New64a()
	_, _ = h.Write([]byte(entity)) // a hash.Hash never fails to write
	var b [16]byte
	v := h.Sum64()
	const digits = "0123456789abcdef"
	for i := 15; i >= 0; i-- {
		b[i] = digits[v&0xf]
		v >>= 4
	}
	return string(b[:])
}

// rawCaptureSubject is what a raw stream captures: crowsnest.raw.<source>.*.*.
func rawCaptureSubject(source string) string {
	return RawSubjectPrefix + "." + source + ".*.*"
}

// RawSubjectTransform is the subject transform of source's raw stream with
// partitions partitions: the server hashes the key token (the second
// wildcard) into the partition number it inserts after the source.
func RawSubjectTransform(source string, partitions int) (*jetstream.SubjectTransformConfig, error) {
	if !ValidSource(source) {
		return nil, unknownSourceError(source)
	}
	if partitions < 1 || partitions > MaxPartitions {
		return nil, fmt.Errorf("raw subject transform for %s: partitions must be 1..%d, got %d", source, MaxPartitions, partitions)
	}
	return &jetstream.SubjectTransformConfig{
		Source:      rawCaptureSubject(source),
		Destination: fmt.Sprintf("%s.%s.{{partition(%d,2)}}.{{wildcard(1)}}.{{wildcard(2)}}", RawSubjectPrefix, source, partitions),
	}, nil
}

// partitionsOfTransform returns the partition count of a raw stream's subject
// transform, or false when t is not one this package declares.
func partitionsOfTransform(source string, t *jetstream.SubjectTransformConfig) (int, bool) {
	if t == nil || t.Source != rawCaptureSubject(source) {
		return 0, false
	}
	prefix := RawSubjectPrefix + "." + source + ".{{partition("
	rest, ok := strings.CutPrefix(t.Destination, prefix)
	if !ok {
		return 0, false
	}
	num, tail, ok := strings.Cut(rest, ",")
	if !ok || tail != "2)}}.{{wildcard(1)}}.{{wildcard(2)}}" {
		return 0, false
	}
	n, err := strconv.Atoi(num)
	if err != nil {
		return 0, false
	}
	return n, true
}

// StreamPartitions returns the partition count of an existing raw stream of
// source, read from its subject transform, and false when the stream is not
// partitioned the way this package declares.
func StreamPartitions(source string, sc jetstream.StreamConfig) (int, bool) {
	return partitionsOfTransform(source, sc.SubjectTransform)
}

// RawPartitionSubjects is the filter of partition p of source's raw stream:
// crowsnest.raw.<source>.<p>.*.*.
func RawPartitionSubjects(source string, p int) (string, error) {
	if !ValidSource(source) {
		return "", unknownSourceError(source)
	}
	if p < 0 || p >= MaxPartitions {
		return "", fmt.Errorf("raw partition subjects for %s: partition %d out of range", source, p)
	}
	return RawSubjectPrefix + "." + source + "." + strconv.Itoa(p) + ".*.*", nil
}

// RawStored is what a raw record's stored subject says:
// crowsnest.raw.<source>.<partition>.<collector>.<key>.
type RawStored struct {
	Source    string
	Partition int
	Collector string
	Key       string // the key token (KeyToken), not the entity
}

// ParseRawStored reads the subject a raw record is stored under (after the
// stream's transform). It reports false for any other subject.
func ParseRawStored(subject string) (RawStored, bool) {
	rest, ok := strings.CutPrefix(subject, RawSubjectPrefix+".")
	if !ok {
		return RawStored{}, false
	}
	parts := strings.Split(rest, ".")
	if len(parts) != 4 || !ValidSource(parts[0]) {
		return RawStored{}, false
	}
	p, err := strconv.Atoi(parts[1])
	if err != nil || p < 0 || p >= MaxPartitions || strconv.Itoa(p) != parts[1] {
		return RawStored{}, false
	}
	if ValidateToken(parts[2]) != nil || ValidateToken(parts[3]) != nil {
		return RawStored{}, false
	}
	return RawStored{Source: parts[0], Partition: p, Collector: parts[2], Key: parts[3]}, true
}
