package topology_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/crowsnest-siem/crowsnest/bus/embedded/natstest"
	"github.com/crowsnest-siem/crowsnest/bus/topology"
)

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// countAPI counts JetStream API requests of kind (CREATE, UPDATE) that
// other clients send, by listening on the API subjects.
func countAPI(t *testing.T, nc *nats.Conn, kinds ...string) func() map[string]int {
	t.Helper()
	var mu sync.Mutex
	counts := map[string]int{}
	for _, k := range kinds {
		sub, err := nc.Subscribe("$JS.API.STREAM."+k+".>", func(*nats.Msg) {
			mu.Lock()
			counts[k]++
			mu.Unlock()
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = sub.Unsubscribe() })
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return func() map[string]int {
		_ = nc.Flush()
		time.Sleep(50 * time.Millisecond) // let the counting subscriber catch up
		mu.Lock()
		defer mu.Unlock()
		out := map[string]int{}
		for k, v := range counts {
			out[k] = v
		}
		return out
	}
}

func TestEnsureCreatesEverythingAndIsIdempotent(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	watcher, _ := natstest.Connect(t, srv)
	cfg := topology.NewDefaultConfig()

	count := countAPI(t, watcher, "CREATE", "UPDATE")
	if err := topology.Ensure(ctx, js, cfg); err != nil {
		t.Fatalf("first Ensure: %v", err)
	}
	first := count()
	if first["CREATE"] != len(topology.Streams(cfg))+1 { // + the KV bucket's stream
		t.Errorf("first Ensure sent %d creates, want %d", first["CREATE"], len(topology.Streams(cfg))+1)
	}
	for _, want := range topology.Streams(cfg) {
		s, err := js.Stream(ctx, want.Name)
		if err != nil {
			t.Fatalf("stream %s: %v", want.Name, err)
		}
		got := s.CachedInfo().Config
		if strings.Join(got.Subjects, ",") != strings.Join(want.Subjects, ",") || got.Retention != want.Retention ||
			got.Storage != want.Storage || got.MaxBytes != want.MaxBytes || got.MaxAge != want.MaxAge ||
			got.Discard != want.Discard || got.Duplicates != want.Duplicates {
			t.Errorf("stream %s = %+v, want %+v", want.Name, got, want)
		}
	}
	kv, err := js.KeyValue(ctx, topology.StateBucket)
	if err != nil {
		t.Fatalf("state bucket: %v", err)
	}
	st, err := kv.Status(ctx)
	if err != nil || st.History() != 1 || st.BackingStore() != "JetStream" {
		t.Errorf("state bucket status %+v, %v", st, err)
	}

	// Twice more: no create, no update.
	for i := 0; i < 2; i++ {
		if err := topology.Ensure(ctx, js, cfg); err != nil {
			t.Fatalf("Ensure again: %v", err)
		}
	}
	again := count()
	if again["CREATE"] != first["CREATE"] || again["UPDATE"] != 0 {
		t.Errorf("repeated Ensure sent requests: %v (first run %v)", again, first)
	}
}

func TestEnsureConcurrentStarts(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	srv := natstest.Start(t)
	cfg := topology.NewDefaultConfig()
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		_, js := natstest.Connect(t, srv)
		wg.Go(func() { errs[i] = topology.Ensure(ctx, js, cfg) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Ensure %d: %v", i, err)
		}
	}
}

func TestEnsureUpdatesOwnedSettingsAndKeepsTheRest(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	cfg := topology.NewDefaultConfig()
	if err := topology.Ensure(ctx, js, cfg); err != nil {
		t.Fatal(err)
	}
	// An operator turns on compression, which crowsnest does not own.
	s, err := js.Stream(ctx, topology.EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	op := s.CachedInfo().Config
	op.Compression = jetstream.S2Compression
	if _, err := js.UpdateStream(ctx, op); err != nil {
		t.Fatal(err)
	}

	cfg.Events.MaxAge = 6 * time.Hour
	cfg.Events.MaxBytes = 2 * topology.GiB
	cfg.Events.Discard = topology.DiscardNew
	cfg.DuplicateWindow = 2 * time.Minute
	cfg.State.History = 3
	if err := topology.Ensure(ctx, js, cfg); err != nil {
		t.Fatalf("Ensure with new limits: %v", err)
	}
	s, err = js.Stream(ctx, topology.EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	got := s.CachedInfo().Config
	if got.MaxAge != 6*time.Hour || got.MaxBytes != int64(2*topology.GiB) || got.Discard != jetstream.DiscardNew || got.Duplicates != 2*time.Minute {
		t.Errorf("events after update = %+v", got)
	}
	if got.Compression != jetstream.S2Compression {
		t.Error("Ensure reset the operator's compression setting")
	}
	kv, err := js.KeyValue(ctx, topology.StateBucket)
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := kv.Status(ctx); st == nil || st.History() != 3 {
		t.Errorf("state bucket history not updated: %+v", st)
	}
}

func TestEnsureRefusesIncompatibleStream(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		existing jetstream.StreamConfig
		fields   []string // IncompatibleError.Field values expected
		mention  []string // substrings of the message
	}{
		{
			name:     "other subjects and memory storage",
			existing: jetstream.StreamConfig{Name: topology.EventsStream, Subjects: []string{"other.events.>"}, Storage: jetstream.MemoryStorage},
			fields:   []string{"subjects", "storage"},
			mention:  []string{"stream CROWSNEST_EVENTS", "[other.events.>]", "[crowsnest.events.>]", "nats stream rm CROWSNEST_EVENTS", `topology.storage to "memory"`},
		},
		{
			name: "raw stream with limits retention",
			existing: jetstream.StreamConfig{Name: "CROWSNEST_RAW_FALCO", Subjects: []string{"crowsnest.raw.falco.*.*"}, Storage: jetstream.FileStorage,
				SubjectTransform: mustTransform(t, topology.SourceFalco, topology.DefaultPartitions)},
			fields:  []string{"retention"},
			mention: []string{"stream CROWSNEST_RAW_FALCO: retention is Limits, crowsnest needs WorkQueue"},
		},
		{
			name: "raw stream from before partitioning",
			existing: jetstream.StreamConfig{Name: "CROWSNEST_RAW_FALCO", Subjects: []string{"crowsnest.raw.falco.>"}, Storage: jetstream.FileStorage,
				Retention: jetstream.WorkQueuePolicy},
			fields: []string{"partitions"},
			mention: []string{"stream CROWSNEST_RAW_FALCO: partitions is none", "unpartitioned", "crowsnest needs 8",
				"let the processor empty it", "nats stream rm CROWSNEST_RAW_FALCO"},
		},
		{
			name: "raw stream with a foreign transform",
			existing: jetstream.StreamConfig{Name: "CROWSNEST_RAW_FALCO", Subjects: []string{"crowsnest.raw.falco.*.*"}, Storage: jetstream.FileStorage,
				Retention:        jetstream.WorkQueuePolicy,
				SubjectTransform: &jetstream.SubjectTransformConfig{Source: "crowsnest.raw.falco.*.*", Destination: "crowsnest.raw.falco.x.{{wildcard(1)}}.{{wildcard(2)}}"}},
			fields:  []string{"subject_transform"},
			mention: []string{"subject_transform is crowsnest.raw.falco.*.* → crowsnest.raw.falco.x."},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := testContext(t)
			srv := natstest.Start(t)
			_, js := natstest.Connect(t, srv)
			if _, err := js.CreateStream(ctx, tt.existing); err != nil {
				t.Fatal(err)
			}
			before, err := js.Stream(ctx, tt.existing.Name)
			if err != nil {
				t.Fatal(err)
			}

			err = topology.Ensure(ctx, js, topology.NewDefaultConfig())
			if !errors.Is(err, topology.ErrIncompatible) {
				t.Fatalf("Ensure = %v, want ErrIncompatible", err)
			}
			var fields []string
			for _, e := range flatten(err) {
				var ie *topology.IncompatibleError
				if errors.As(e, &ie) {
					if ie.Stream != tt.existing.Name {
						t.Errorf("incompatible stream %s, want %s", ie.Stream, tt.existing.Name)
					}
					fields = append(fields, ie.Field)
				}
			}
			if strings.Join(fields, ",") != strings.Join(tt.fields, ",") {
				t.Errorf("incompatible fields %v, want %v", fields, tt.fields)
			}
			for _, m := range tt.mention {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error does not mention %q:\n%v", m, err)
				}
			}
			after, err := js.Stream(ctx, tt.existing.Name)
			if err != nil {
				t.Fatal(err)
			}
			b, a := before.CachedInfo().Config, after.CachedInfo().Config
			if strings.Join(b.Subjects, ",") != strings.Join(a.Subjects, ",") || b.Storage != a.Storage ||
				b.Retention != a.Retention || b.MaxAge != a.MaxAge || b.MaxBytes != a.MaxBytes || b.Description != a.Description {
				t.Errorf("Ensure changed the incompatible stream:\nbefore %+v\nafter  %+v", b, a)
			}
			// The compatible streams were still created.
			if _, err := js.Stream(ctx, topology.AlertsStream); err != nil {
				t.Errorf("compatible stream not created: %v", err)
			}
		})
	}
}

func TestEnsureExplainsServerRefusals(t *testing.T) {
	t.Parallel()
	t.Run("subject overlap names the other stream", func(t *testing.T) {
		ctx := testContext(t)
		srv := natstest.Start(t)
		_, js := natstest.Connect(t, srv)
		if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "AUDIT_ARCHIVE", Subjects: []string{"crowsnest.alerts.*"}}); err != nil {
			t.Fatal(err)
		}
		err := topology.Ensure(ctx, js, topology.NewDefaultConfig())
		if err == nil || !strings.Contains(err.Error(), "create stream CROWSNEST_ALERTS") || !strings.Contains(err.Error(), "AUDIT_ARCHIVE") {
			t.Fatalf("Ensure = %v, want an overlap error naming AUDIT_ARCHIVE", err)
		}
	})
	t.Run("replicas on a single server", func(t *testing.T) {
		ctx := testContext(t)
		srv := natstest.Start(t)
		_, js := natstest.Connect(t, srv)
		cfg := topology.NewDefaultConfig()
		cfg.Replicas = 3
		err := topology.Ensure(ctx, js, cfg)
		if err == nil || !strings.Contains(err.Error(), "topology.replicas to 1") {
			t.Fatalf("Ensure = %v, want advice to set topology.replicas to 1", err)
		}
	})
	t.Run("replicas change refused on existing stream", func(t *testing.T) {
		ctx := testContext(t)
		srv := natstest.Start(t)
		_, js := natstest.Connect(t, srv)
		cfg := topology.NewDefaultConfig()
		if err := topology.Ensure(ctx, js, cfg); err != nil {
			t.Fatal(err)
		}
		cfg.Replicas = 3
		err := topology.Ensure(ctx, js, cfg)
		var ie *topology.IncompatibleError
		if !errors.As(err, &ie) || ie.Field != "replicas" || ie.Existing != "1" || ie.Wanted != "3" {
			t.Fatalf("Ensure = %v, want IncompatibleError on replicas 1 -> 3", err)
		}
	})
	t.Run("reservations beyond max_store", func(t *testing.T) {
		ctx := testContext(t)
		ecfg := natstest.Config(t)
		ecfg.MaxStore = 5 * topology.GiB // less than the default topology reserves
		srv := natstest.StartWith(t, ecfg)
		_, js := natstest.Connect(t, srv)
		err := topology.Ensure(ctx, js, topology.NewDefaultConfig())
		if err == nil || !strings.Contains(err.Error(), "lower topology.*.max_bytes") {
			t.Fatalf("Ensure = %v, want advice about max_bytes and max_store", err)
		}
	})
	t.Run("invalid config is reported with paths and nothing is created", func(t *testing.T) {
		ctx := testContext(t)
		srv := natstest.Start(t)
		_, js := natstest.Connect(t, srv)
		cfg := topology.NewDefaultConfig()
		cfg.Raw.MaxBytes = 0
		err := topology.Ensure(ctx, js, cfg)
		if err == nil || !strings.Contains(err.Error(), "topology.raw.max_bytes: must be > 0") {
			t.Fatalf("Ensure = %v", err)
		}
		if _, err := js.Stream(ctx, topology.EventsStream); !errors.Is(err, jetstream.ErrStreamNotFound) {
			t.Fatalf("stream created despite invalid config: %v", err)
		}
	})
}

func mustTransform(t *testing.T, source string, n int) *jetstream.SubjectTransformConfig {
	t.Helper()
	tr, err := topology.RawSubjectTransform(source, n)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func flatten(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return []error{err}
}
