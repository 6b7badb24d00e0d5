package topology

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.yaml.in/yaml/v3"

	"github.com/crowsnest-siem/crowsnest/bus/internal/fielderr"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*Config)
		want   []string // substrings of the error; none means valid
	}{
		{"defaults", func(*Config) {}, nil},
		{"memory, 3 replicas", func(c *Config) { c.Storage = StorageMemory; c.Replicas = 3 }, nil},
		{"no age limit", func(c *Config) { c.Events.MaxAge = 0 }, nil},
		{"unlimited sink deliveries with backoff", func(c *Config) { c.Consumers.Sink.Backoff = []time.Duration{time.Minute} }, nil},
		{"zero replicas", func(c *Config) { c.Replicas = 0 }, []string{"replicas: must be between 1 and 5"}},
		{"bad storage", func(c *Config) { c.Storage = "disk" }, []string{`storage: must be "file" or "memory", got "disk"`}},
		{"zero duplicate window", func(c *Config) { c.DuplicateWindow = 0 }, []string{"duplicate_window: must be > 0"}},
		{"zero raw bytes", func(c *Config) { c.Raw.MaxBytes = 0 }, []string{"raw.max_bytes: must be > 0"}},
		{"negative age", func(c *Config) { c.Alerts.MaxAge = -time.Hour }, []string{"alerts.max_age: must be >= 0"}},
		{"bad discard", func(c *Config) { c.DeadLetter.Discard = "oldest" }, []string{`dead_letter.discard: must be "new" or "old"`}},
		{"window longer than age", func(c *Config) { c.Events.MaxAge = time.Minute },
			[]string{"duplicate_window: 10m0s is longer than events.max_age 1m0s"}},
		{"history", func(c *Config) { c.State.History = 65 }, []string{"state.history: must be between 1 and 64"}},
		{"ttl", func(c *Config) { c.State.TTL = -1 }, []string{"state.ttl: must be >= 0"}},
		{"state bytes", func(c *Config) { c.State.MaxBytes = 0 }, []string{"state.max_bytes: must be > 0"}},
		{"ack wait", func(c *Config) { c.Consumers.Processor.AckWait = 0 }, []string{"consumers.processor.ack_wait: must be > 0"}},
		{"max deliver zero", func(c *Config) { c.Consumers.Sink.MaxDeliver = 0 }, []string{"consumers.sink.max_deliver: must be >= 1, or -1"}},
		{"backoff too long", func(c *Config) { c.Consumers.Processor.MaxDeliver = 2 }, []string{"consumers.processor.backoff: has 2 steps"}},
		{"backoff negative", func(c *Config) { c.Consumers.Processor.Backoff[1] = -1 }, []string{"consumers.processor.backoff[1]: must be > 0"}},
		{"max ack pending", func(c *Config) { c.Consumers.Sink.MaxAckPending = 0 }, []string{"consumers.sink.max_ack_pending: must be >= 1"}},
		{"one partition", func(c *Config) { c.Partitions = 1 }, nil},
		{"zero partitions", func(c *Config) { c.Partitions = 0 }, []string{"partitions: must be between 1 and 256, got 0"}},
		{"too many partitions", func(c *Config) { c.Partitions = 257 }, []string{"partitions: must be between 1 and 256, got 257"}},
		{"negative pinned ttl", func(c *Config) { c.Consumers.Processor.PinnedTTL = -1 }, []string{"consumers.processor.pinned_ttl: must be >= 0"}},
		{"several at once", func(c *Config) { c.Replicas = 9; c.Raw.MaxBytes = -5; c.Events.Discard = "" },
			[]string{"replicas:", "raw.max_bytes:", "events.discard:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := NewDefaultConfig()
			tt.modify(&cfg)
			err := cfg.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate() = %q\nwant it to contain %q", err, w)
				}
			}
			var fe *fielderr.Error
			if !errors.As(err, &fe) || fe.FieldPath() == "" {
				t.Errorf("Validate() errors should carry field paths, got %T", err)
			}
		})
	}
}

func TestConfigYAML(t *testing.T) {
	const doc = `
replicas: 1
storage: memory
duplicate_window: 5m
raw: {max_age: 48h, max_bytes: 2GiB, discard: new}
events: {max_age: 12h, max_bytes: 512MiB, discard: old}
alerts: {max_age: 720h, max_bytes: 1GB, discard: old}
dead_letter: {max_age: 720h, max_bytes: 100MiB, discard: new}
state: {history: 5, ttl: 24h, max_bytes: 64MiB}
consumers:
  processor: {ack_wait: 10s, backoff: [30s, 2m], max_deliver: 4, max_ack_pending: 100}
  sink: {ack_wait: 1m, max_deliver: -1, max_ack_pending: 5000}
`
	cfg := NewDefaultConfig()
	if err := decodeStrict(doc, &cfg); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if cfg.Storage != StorageMemory || cfg.DuplicateWindow != 5*time.Minute || cfg.Raw.MaxBytes != 2*GiB ||
		cfg.Alerts.MaxBytes != GB || cfg.State.History != 5 || cfg.State.TTL != 24*time.Hour ||
		cfg.Consumers.Processor.Backoff[1] != 2*time.Minute || cfg.Consumers.Sink.MaxDeliver != -1 {
		t.Fatalf("decoded %+v", cfg)
	}

	// A partial file keeps the defaults for what it leaves out.
	cfg = NewDefaultConfig()
	if err := decodeStrict("events: {max_age: 6h}\n", &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.Events.MaxAge != 6*time.Hour || cfg.Events.MaxBytes != NewDefaultConfig().Events.MaxBytes {
		t.Fatalf("partial decode lost defaults: %+v", cfg.Events)
	}

	bad := []struct{ name, doc, want string }{
		{"typo", "raw: {max_byte: 1GiB}\n", "max_byte"},
		{"unknown top key", "retention: workqueue\n", "retention"},
		{"bad size", "raw: {max_bytes: 10G}\n", "ambiguous"},
		{"bad duration", "duplicate_window: 10 minutes\n", "10 minutes"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			cfg := NewDefaultConfig()
			err := decodeStrict(tt.doc, &cfg)
			if err == nil {
				t.Fatalf("decode %q: want error", tt.doc)
			}
			if tt.want != "ambiguous" && !strings.Contains(err.Error(), tt.want) {
				t.Errorf("decode error %q does not mention %q", err, tt.want)
			}
		})
	}

	// What we write reads back: defaults survive a marshal/unmarshal.
	out, err := yaml.Marshal(NewDefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	back := Config{}
	if err := decodeStrict(string(out), &back); err != nil {
		t.Fatalf("re-decode of\n%s: %v", out, err)
	}
	if err := back.Validate(); err != nil {
		t.Fatalf("re-decoded defaults invalid: %v\n%s", err, out)
	}
}

func decodeStrict(doc string, dst *Config) error {
	dec := yaml.NewDecoder(strings.NewReader(doc))
	dec.KnownFields(true)
	return dec.Decode(dst)
}

func TestStreams(t *testing.T) {
	cfg := NewDefaultConfig()
	streams := Streams(cfg)
	if len(streams) != len(Sources())+3 {
		t.Fatalf("Streams() has %d streams, want %d", len(streams), len(Sources())+3)
	}
	byName := map[string]jetstream.StreamConfig{}
	for _, s := range streams {
		if _, dup := byName[s.Name]; dup {
			t.Fatalf("stream %s declared twice", s.Name)
		}
		byName[s.Name] = s
		if s.Storage != jetstream.FileStorage || s.Replicas != 1 || s.Duplicates != 10*time.Minute {
			t.Errorf("%s: storage %v replicas %d duplicates %s", s.Name, s.Storage, s.Replicas, s.Duplicates)
		}
		if !strings.Contains(s.Description, "managed by crowsnest") {
			t.Errorf("%s: description %q", s.Name, s.Description)
		}
	}
	tests := []struct {
		name      string
		subject   string
		retention jetstream.RetentionPolicy
		discard   jetstream.DiscardPolicy
		maxAge    time.Duration
		maxBytes  int64
	}{
		{"CROWSNEST_RAW_K8S_AUDIT", "crowsnest.raw.k8s_audit.*.*", jetstream.WorkQueuePolicy, jetstream.DiscardNew, 72 * time.Hour, int64(GiB)},
		{"CROWSNEST_RAW_JSON", "crowsnest.raw.json.*.*", jetstream.WorkQueuePolicy, jetstream.DiscardNew, 72 * time.Hour, int64(GiB)},
		{"CROWSNEST_EVENTS", "crowsnest.events.>", jetstream.LimitsPolicy, jetstream.DiscardOld, 24 * time.Hour, int64(10 * GiB)},
		{"CROWSNEST_ALERTS", "crowsnest.alerts.>", jetstream.LimitsPolicy, jetstream.DiscardOld, 30 * 24 * time.Hour, int64(GiB)},
		{"CROWSNEST_DLQ", "crowsnest.dlq.>", jetstream.LimitsPolicy, jetstream.DiscardNew, 30 * 24 * time.Hour, int64(GiB)},
	}
	for _, tt := range tests {
		s, ok := byName[tt.name]
		if !ok {
			t.Errorf("no stream %s", tt.name)
			continue
		}
		if len(s.Subjects) != 1 || s.Subjects[0] != tt.subject || s.Retention != tt.retention ||
			s.Discard != tt.discard || s.MaxAge != tt.maxAge || s.MaxBytes != tt.maxBytes {
			t.Errorf("%s = %+v", tt.name, s)
		}
	}
	cfg.Storage = StorageMemory
	cfg.Replicas = 3
	for _, s := range Streams(cfg) {
		if s.Storage != jetstream.MemoryStorage || s.Replicas != 3 {
			t.Errorf("%s ignores storage/replicas", s.Name)
		}
	}
	kv := StateBucketConfig(NewDefaultConfig())
	if kv.Bucket != "crowsnest-state" || kv.History != 1 || kv.MaxBytes != int64(256*MiB) || kv.Storage != jetstream.FileStorage {
		t.Errorf("StateBucketConfig = %+v", kv)
	}
}

func TestConsumerConfigs(t *testing.T) {
	cfg := NewDefaultConfig()
	p, err := ProcessorConsumerConfig(SourceFalco, 5, cfg.Consumers.Processor)
	if err != nil {
		t.Fatal(err)
	}
	if p.Durable != "processor-p5" || p.FilterSubject != "crowsnest.raw.falco.5.*.*" ||
		p.PriorityPolicy != jetstream.PriorityPolicyNone || p.PriorityGroups != nil || p.PinnedTTL != 0 || p.AckPolicy != jetstream.AckExplicitPolicy || p.DeliverPolicy != jetstream.DeliverAllPolicy ||
		p.MaxDeliver != 5 || p.MaxAckPending != 2048 || p.AckWait != 30*time.Second {
		t.Errorf("processor consumer = %+v", p)
	}
	// BackOff starts with AckWait: JetStream uses BackOff[0] as the first wait.
	if want := []time.Duration{30 * time.Second, time.Minute, 5 * time.Minute}; !slices.Equal(p.BackOff, want) {
		t.Errorf("processor BackOff = %v, want %v", p.BackOff, want)
	}
	decls := ProcessorConsumers(cfg.Partitions, cfg.Consumers.Processor)
	if len(decls) != len(Sources())*8 || decls[0].Stream != "CROWSNEST_RAW_K8S_AUDIT" || decls[7].Config.Durable != "processor-p7" ||
		decls[8].Stream == "CROWSNEST_RAW_K8S_AUDIT" || decls[8].Config.Durable != "processor-p0" {
		t.Errorf("ProcessorConsumers = %+v", decls)
	}
	if _, err := ProcessorConsumerConfig(SourceFalco, -1, cfg.Consumers.Processor); err == nil {
		t.Error("partition -1 accepted")
	}
	pinned := cfg.Consumers.Processor
	pinned.PinnedTTL = 10 * time.Second
	if p, _ := ProcessorConsumerConfig(SourceFalco, 0, pinned); p.PriorityPolicy != jetstream.PriorityPolicyPinned || !slices.Equal(p.PriorityGroups, []string{"owner"}) || p.PinnedTTL != 10*time.Second {
		t.Errorf("pinned_ttl 10s does not pin: %+v", p)
	}

	s, err := SinkConsumerConfig("clickhouse", cfg.Consumers.Sink)
	if err != nil {
		t.Fatal(err)
	}
	if s.Durable != "sink-clickhouse" || s.MaxDeliver != -1 || s.BackOff != nil || s.AckWait != time.Minute {
		t.Errorf("sink consumer = %+v", s)
	}
	sd, err := SinkConsumers("es", cfg.Consumers.Sink)
	if err != nil || len(sd) != 2 || sd[0].Stream != EventsStream || sd[1].Stream != AlertsStream {
		t.Errorf("SinkConsumers = %+v, %v", sd, err)
	}
	if _, err := SinkConsumerConfig("a.b", cfg.Consumers.Sink); err == nil {
		t.Error("SinkConsumerConfig(a.b): want error")
	}
}

func TestIsLastDelivery(t *testing.T) {
	tests := []struct {
		maxDeliver int
		delivered  uint64
		want       bool
	}{
		{5, 1, false},
		{5, 4, false},
		{5, 5, true},
		{5, 6, true},
		{1, 1, true},
		{-1, 1000, false},
	}
	for _, tt := range tests {
		s := ConsumerSettings{MaxDeliver: tt.maxDeliver}
		if got := s.IsLastDelivery(tt.delivered); got != tt.want {
			t.Errorf("MaxDeliver %d, delivered %d: IsLastDelivery = %v, want %v", tt.maxDeliver, tt.delivered, got, tt.want)
		}
	}
}
