package topology

import (
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Streams returns the configuration of every stream crowsnest owns, in a
// stable order: one raw stream per source, then events, alerts, dead-letter.
// It is pure: it reads cfg and nothing else. It does not validate cfg.
func Streams(cfg Config) []jetstream.StreamConfig {
	out := make([]jetstream.StreamConfig, 0, len(Sources())+3)
	for _, src := range Sources() {
		// Sources() are valid by construction, so these cannot fail.
		name, _ := RawStream(src)
		subj, _ := RawSubjects(src)
		sc := streamConfig(cfg, name, subj, jetstream.WorkQueuePolicy, cfg.Raw,
			fmt.Sprintf("crowsnest: raw %s records awaiting the processor (work queue, %d partitions; managed by crowsnest)", src, cfg.Partitions))
		// An invalid partition count leaves the transform out; Ensure
		// validates cfg before it uses these.
		sc.SubjectTransform, _ = RawSubjectTransform(src, cfg.Partitions)
		out = append(out, sc)
	}
	out = append(out,
		streamConfig(cfg, EventsStream, EventSubjects, jetstream.LimitsPolicy, cfg.Events,
			"crowsnest: normalized events for the sinks (managed by crowsnest)"),
		streamConfig(cfg, AlertsStream, AlertSubjects, jetstream.LimitsPolicy, cfg.Alerts,
			"crowsnest: alerts for the sinks (managed by crowsnest)"),
		streamConfig(cfg, DeadLetterStream, DeadLetterSubjects, jetstream.LimitsPolicy, cfg.DeadLetter,
			"crowsnest: rejected records with the reason in headers (managed by crowsnest)"),
	)
	return out
}

func streamConfig(cfg Config, name, subject string, retention jetstream.RetentionPolicy, l Limits, desc string) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        name,
		Description: desc,
		Subjects:    []string{subject},
		Retention:   retention,
		Storage:     storageType(cfg.Storage),
		Replicas:    cfg.Replicas,
		Duplicates:  cfg.DuplicateWindow,
		MaxAge:      l.MaxAge,
		MaxBytes:    int64(l.MaxBytes),
		Discard:     discardPolicy(l.Discard),
	}
}

// StateBucketConfig returns the configuration of the crowsnest-state bucket.
// It is pure and does not validate cfg.
func StateBucketConfig(cfg Config) jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{
		Bucket:      StateBucket,
		Description: "crowsnest: processor state (managed by crowsnest)",
		History:     uint8(min(max(cfg.State.History, 0), 64)),
		TTL:         cfg.State.TTL,
		MaxBytes:    int64(cfg.State.MaxBytes),
		Storage:     storageType(cfg.Storage),
		Replicas:    cfg.Replicas,
	}
}

func storageType(s Storage) jetstream.StorageType {
	if s == StorageMemory {
		return jetstream.MemoryStorage
	}
	return jetstream.FileStorage
}

func discardPolicy(d Discard) jetstream.DiscardPolicy {
	if d == DiscardOld {
		return jetstream.DiscardOld
	}
	return jetstream.DiscardNew
}

// subjectsString formats a subject list for error messages.
func subjectsString(s []string) string {
	return "[" + strings.Join(s, " ") + "]"
}

// ProcessorsBucketConfig returns the configuration of the
// crowsnest-processors bucket: membership leases expire lease after their
// last renewal. Leases are soft state every replica re-asserts each third of
// a lease, so the bucket lives in memory on one server. It is pure.
func ProcessorsBucketConfig(lease time.Duration) jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{
		Bucket:      ProcessorsBucket,
		Description: "crowsnest: processor replicas' membership leases (managed by crowsnest)",
		History:     1,
		TTL:         lease,
		Storage:     jetstream.MemoryStorage,
		Replicas:    1,
	}
}
