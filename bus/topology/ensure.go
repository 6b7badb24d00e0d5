package topology

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/crowsnest-siem/crowsnest/bus/internal/fielderr"
)

// ErrIncompatible is matched (errors.Is) by every IncompatibleError.
var ErrIncompatible = errors.New("incompatible existing stream")

// IncompatibleError says an existing stream (or bucket) differs from what
// crowsnest needs in a setting crowsnest will not change on its own, because
// changing it would lose data or break whoever else uses the stream.
type IncompatibleError struct {
	Stream   string // the stream's name
	Field    string // the setting, in JetStream's words (subjects, storage, ...)
	Existing string // what the stream has
	Wanted   string // what crowsnest needs
	Fix      string // what the user can do
}

func (e *IncompatibleError) Error() string {
	return fmt.Sprintf("stream %s: %s is %s, crowsnest needs %s; crowsnest does not change this on an existing stream: %s",
		e.Stream, e.Field, e.Existing, e.Wanted, e.Fix)
}

// Is lets errors.Is(err, ErrIncompatible) match.
func (e *IncompatibleError) Is(target error) bool { return target == ErrIncompatible }

// EnsureOption configures Ensure.
type EnsureOption func(*ensureOptions)

type ensureOptions struct {
	logger *slog.Logger
}

// WithLogger makes Ensure log each stream it creates or updates (at info) and
// each it finds up to date (at debug).
func WithLogger(l *slog.Logger) EnsureOption {
	return func(o *ensureOptions) { o.logger = l }
}

// Ensure makes the server hold every stream and the state bucket cfg
// declares. A missing one is created. An existing one gets the settings
// crowsnest owns (description, limits, discard, duplicate window, replicas)
// updated in place, and keeps everything else an operator set (compression,
// placement, metadata). An existing one that differs in subjects, storage,
// retention, or is a mirror or sealed, is left untouched and reported as an
// *IncompatibleError. Ensure reports every problem it finds, joined, and is a
// no-op (no update request) when everything is already as declared, so every
// stage may call it at start, concurrently.
func Ensure(ctx context.Context, js jetstream.JetStream, cfg Config, opts ...EnsureOption) error {
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("ensure topology: invalid config:\n%w", fielderr.Prefix(ConfigKey, err))
	}
	o := ensureOptions{logger: slog.New(slog.DiscardHandler)}
	for _, opt := range opts {
		opt(&o)
	}
	var errs []error
	for _, want := range Streams(cfg) {
		if err := ensureStream(ctx, js, want, o.logger); err != nil {
			errs = append(errs, err)
		}
		if ctx.Err() != nil {
			break
		}
	}
	if ctx.Err() == nil {
		if err := ensureState(ctx, js, StateBucketConfig(cfg), o.logger); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func ensureStream(ctx context.Context, js jetstream.JetStream, want jetstream.StreamConfig, log *slog.Logger) error {
	// Two attempts: a create that loses a race with another stage's Ensure
	// finds the stream on the second look and reconciles it.
	for attempt := 0; ; attempt++ {
		s, err := js.Stream(ctx, want.Name)
		switch {
		case errors.Is(err, jetstream.ErrStreamNotFound):
			_, err = js.CreateStream(ctx, want)
			if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) && attempt == 0 {
				continue
			}
			if err != nil {
				return fmt.Errorf("create stream %s: %w%s", want.Name, err, explain(ctx, js, err, want))
			}
			log.Info("created stream", "stream", want.Name, "subjects", want.Subjects)
			return nil
		case err != nil:
			return fmt.Errorf("look up stream %s: %w", want.Name, err)
		}
		return reconcileStream(ctx, js, s.CachedInfo().Config, want, log)
	}
}

func reconcileStream(ctx context.Context, js jetstream.JetStream, have, want jetstream.StreamConfig, log *slog.Logger) error {
	if err := checkPartitions(have, want); err != nil {
		return err
	}
	if err := checkFixed(have, want, want.Retention); err != nil {
		return err
	}
	upd, changed := applyOwned(have, want)
	if len(changed) == 0 {
		log.Debug("stream up to date", "stream", want.Name)
		return nil
	}
	if _, err := js.UpdateStream(ctx, upd); err != nil {
		if have.Replicas != want.Replicas {
			return &IncompatibleError{
				Stream: want.Name, Field: "replicas",
				Existing: fmt.Sprint(have.Replicas), Wanted: fmt.Sprint(want.Replicas),
				Fix: fmt.Sprintf("the server refused the change (%v); set %s.replicas to %d, or give the cluster enough servers for %d replicas",
					err, ConfigKey, have.Replicas, want.Replicas),
			}
		}
		return fmt.Errorf("update stream %s (%s): %w%s", want.Name, strings.Join(changed, ", "), err, explain(ctx, js, err, want))
	}
	log.Info("updated stream", "stream", want.Name, "fields", changed)
	return nil
}

// checkFixed reports the settings crowsnest never changes on an existing
// stream: they decide what the stream captures and how it keeps it, and
// changing them would lose messages or break another user of the stream.
func checkFixed(have, want jetstream.StreamConfig, retention jetstream.RetentionPolicy) error {
	var errs []error
	rm := fmt.Sprintf("delete it (nats stream rm %s; this deletes its messages) and let crowsnest recreate it", want.Name)
	if have.Mirror != nil {
		errs = append(errs, &IncompatibleError{Stream: want.Name, Field: "mirror",
			Existing: "a mirror of " + have.Mirror.Name, Wanted: "a stream of its own",
			Fix: "mirrors do not take publishes; " + rm})
	}
	if !sameSet(have.Subjects, want.Subjects) {
		errs = append(errs, &IncompatibleError{Stream: want.Name, Field: "subjects",
			Existing: subjectsString(have.Subjects), Wanted: subjectsString(want.Subjects),
			Fix: "another tool may own a stream of this name; give crowsnest its own NATS account, or " + rm})
	}
	if have.Storage != want.Storage {
		errs = append(errs, &IncompatibleError{Stream: want.Name, Field: "storage",
			Existing: have.Storage.String(), Wanted: want.Storage.String(),
			Fix: fmt.Sprintf("set %s.storage to %q (it applies to every stream) to keep this one as it is, or %s", ConfigKey, storageName(have.Storage), rm)})
	}
	if have.Retention != retention {
		errs = append(errs, &IncompatibleError{Stream: want.Name, Field: "retention",
			Existing: have.Retention.String(), Wanted: retention.String(),
			Fix: "after the processor and sinks have drained it, " + rm})
	}
	if have.Sealed {
		errs = append(errs, &IncompatibleError{Stream: want.Name, Field: "sealed",
			Existing: "true", Wanted: "false", Fix: "a sealed stream takes no publishes and cannot be unsealed; " + rm})
	}
	return errors.Join(errs...)
}

// checkPartitions refuses to re-partition a raw stream: records already
// stored sit in the partitions of the old count, so a replica taking
// partition p of the new count would see an entity's older records in
// another partition, after its newer ones — the per-entity order the
// partitions exist for. Only an empty stream can change it: deleting it and
// letting crowsnest recreate it.
func checkPartitions(have, want jetstream.StreamConfig) error {
	if want.SubjectTransform == nil || len(want.Subjects) == 0 {
		return nil // not a raw stream
	}
	src, ok := SourceOfSubject(want.Subjects[0])
	if !ok {
		return nil
	}
	wantN, _ := partitionsOfTransform(src, want.SubjectTransform)
	drain := fmt.Sprintf("stop the collectors, let the processor empty it (nats stream info %s shows 0 messages), then delete it (nats stream rm %s) and let crowsnest recreate it",
		want.Name, want.Name)
	haveN, ok := partitionsOfTransform(src, have.SubjectTransform)
	switch {
	case ok && haveN == wantN:
		return nil
	case ok:
		return &IncompatibleError{Stream: want.Name, Field: "partitions",
			Existing: fmt.Sprint(haveN), Wanted: fmt.Sprint(wantN),
			Fix: fmt.Sprintf("set %s.partitions back to %d; to re-partition, %s (every raw stream: re-partitioning stored records would break per-entity order)",
				ConfigKey, haveN, drain)}
	case have.SubjectTransform == nil:
		return &IncompatibleError{Stream: want.Name, Field: "partitions",
			Existing: "none (subjects " + subjectsString(have.Subjects) + ", unpartitioned)", Wanted: fmt.Sprint(wantN),
			Fix: "a raw stream from before partitioning, or another tool's; " + drain}
	default:
		return &IncompatibleError{Stream: want.Name, Field: "subject_transform",
			Existing: have.SubjectTransform.Source + " → " + have.SubjectTransform.Destination,
			Wanted:   want.SubjectTransform.Source + " → " + want.SubjectTransform.Destination,
			Fix:      "another tool may own a stream of this name; give crowsnest its own NATS account, or " + drain}
	}
}

// applyOwned returns have with the settings crowsnest owns set from want, and
// the names of those that changed.
func applyOwned(have, want jetstream.StreamConfig) (jetstream.StreamConfig, []string) {
	upd := have
	var changed []string
	set := func(name string, differs bool) {
		if differs {
			changed = append(changed, name)
		}
	}
	set("description", have.Description != want.Description)
	set("max_age", have.MaxAge != want.MaxAge)
	set("max_bytes", have.MaxBytes != want.MaxBytes)
	set("discard", have.Discard != want.Discard)
	set("duplicate_window", have.Duplicates != want.Duplicates)
	set("replicas", have.Replicas != want.Replicas)
	upd.Description = want.Description
	upd.MaxAge = want.MaxAge
	upd.MaxBytes = want.MaxBytes
	upd.Discard = want.Discard
	upd.Duplicates = want.Duplicates
	upd.Replicas = want.Replicas
	return upd, changed
}

func ensureState(ctx context.Context, js jetstream.JetStream, want jetstream.KeyValueConfig, log *slog.Logger) error {
	s, err := js.Stream(ctx, StateBucketStream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		_, err = js.CreateKeyValue(ctx, want)
		if errors.Is(err, jetstream.ErrBucketExists) {
			// Lost a race with another Ensure; the bucket now exists.
			s, err = js.Stream(ctx, StateBucketStream)
		} else {
			if err != nil {
				return fmt.Errorf("create key-value bucket %s: %w%s", want.Bucket, err, explain(ctx, js, err, jetstream.StreamConfig{Name: StateBucketStream}))
			}
			log.Info("created key-value bucket", "bucket", want.Bucket)
			return nil
		}
	}
	if err != nil {
		return fmt.Errorf("look up key-value bucket %s: %w", want.Bucket, err)
	}
	have := s.CachedInfo().Config
	wantStream := jetstream.StreamConfig{
		Name:      StateBucketStream,
		Subjects:  []string{"$KV." + want.Bucket + ".>"},
		Storage:   want.Storage,
		Retention: jetstream.LimitsPolicy,
	}
	if err := checkFixed(have, wantStream, jetstream.LimitsPolicy); err != nil {
		return err
	}
	var changed []string
	if have.Description != want.Description {
		changed = append(changed, "description")
	}
	if have.MaxMsgsPerSubject != int64(want.History) {
		changed = append(changed, "history")
	}
	if have.MaxAge != want.TTL {
		changed = append(changed, "ttl")
	}
	if have.MaxBytes != want.MaxBytes {
		changed = append(changed, "max_bytes")
	}
	if have.Replicas != want.Replicas {
		changed = append(changed, "replicas")
	}
	if len(changed) == 0 {
		log.Debug("key-value bucket up to date", "bucket", want.Bucket)
		return nil
	}
	if _, err := js.UpdateKeyValue(ctx, want); err != nil {
		return fmt.Errorf("update key-value bucket %s (%s): %w%s", want.Bucket, strings.Join(changed, ", "), err,
			explain(ctx, js, err, jetstream.StreamConfig{Name: StateBucketStream}))
	}
	log.Info("updated key-value bucket", "bucket", want.Bucket, "fields", changed)
	return nil
}

// JetStream API error codes explain turns into advice.
const (
	codeInsufficientResources    = 10023
	codeMemoryResourcesExceeded  = 10028
	codeStorageResourcesExceeded = 10047
	codeSubjectOverlap           = 10065
	codeReplicasNotSupported     = 10074
)

// explain returns advice to append to a create/update error, or "".
func explain(ctx context.Context, js jetstream.JetStream, err error, want jetstream.StreamConfig) string {
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) {
		return ""
	}
	switch apiErr.ErrorCode {
	case codeInsufficientResources, codeStorageResourcesExceeded, codeMemoryResourcesExceeded:
		return fmt.Sprintf(" (JetStream reserves each stream's max_bytes up front and the server's limit is smaller than the total: lower %s.*.max_bytes, or raise the server's JetStream max_store/max_memory, e.g. embedded.max_store)", ConfigKey)
	case codeReplicasNotSupported:
		return fmt.Sprintf(" (a single server holds 1 replica: set %s.replicas to 1)", ConfigKey)
	case codeSubjectOverlap:
		for _, subj := range want.Subjects {
			if other, lerr := js.StreamNameBySubject(ctx, subj); lerr == nil && other != "" {
				return fmt.Sprintf(" (stream %s already captures %s: remove those subjects from it or delete it)", other, subj)
			}
		}
		return " (another stream already captures some of these subjects: remove them from it)"
	}
	return ""
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

func storageName(s jetstream.StorageType) Storage {
	if s == jetstream.MemoryStorage {
		return StorageMemory
	}
	return StorageFile
}
