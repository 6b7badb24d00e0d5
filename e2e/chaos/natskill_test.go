package chaos

import (
	"context"
	"os"
	"testing"
	"time"
)

// TestKillNATS is issue #9's scenario 2 with JetStream's default
// sync_interval (fsync every 2 minutes): the standalone nats-server
// SIGKILLed 20 times during a 100k-record run and restarted on its store;
// the stages reconnect. A process crash leaves what the server wrote in the
// kernel's page cache, so nothing written should be lost even without an
// fsync; only an OS crash or power loss could lose the unsynced tail.
func TestKillNATS(t *testing.T) {
	requireFull(t)
	killNATS(t, "", scaled(t, 100_000, 5000), 20, 15*time.Minute, 0)
}

// TestKillNATSSyncAlways is the same with sync_interval: always (an fsync
// per write): the figures say what the stronger setting costs.
func TestKillNATSSyncAlways(t *testing.T) {
	requireFull(t)
	killNATS(t, "always", scaled(t, 100_000, 5000), 20, 20*time.Minute, 0)
}

// TestKillNATSSmoke is the CI-sized scenario 2: 3,000 records, two kills
// of the nats-server under each sync setting.
func TestKillNATSSmoke(t *testing.T) {
	requireSmoke(t)
	for _, sync := range []string{"", "always"} {
		name := "default"
		if sync != "" {
			name = sync
		}
		t.Run(name, func(t *testing.T) { killNATS(t, sync, 3000, 2, 2*time.Minute, 5*time.Second) })
	}
}

// killNATS runs scenario 2 with sync ("" the server's default, or
// "always"). ackWaits, when set, cuts the processor's and the sink's ack
// waits (the smoke: what a stage had in flight when the server died comes
// back sooner).
func killNATS(t *testing.T, sync string, records, kills int, budget, ackWaits time.Duration) {
	spec := pipelineSpec{prefix: "nkill", records: records, badEvery: max(records/10, 500), budget: budget,
		sinks: []string{"sink-file"}, natsSync: sync, sinkAckWait: ackWaits, processorAckWait: ackWaits}
	killStage(t, spec, "nats", kills, func(p *pipeline) func() (int, error) {
		// What the server runs with, from itself: the setting under test.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		always, interval, err := p.nats.JetStreamSync(ctx)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("nats-server reports sync_always=%t sync_interval=%s", always, interval)
		if always != (sync == "always") {
			t.Fatalf("nats-server sync_always=%t, want %t", always, sync == "always")
		}
		return eventsProgress(p)
	})
}

// requireSmoke skips unless the smoke set (or the full suite) was asked for.
func requireSmoke(t *testing.T) {
	t.Helper()
	if os.Getenv(envSmoke) == "" && os.Getenv(envFull) == "" {
		t.Skipf("fault smoke scenario: set %s=1 (or %s=1) to run it; it builds and starts real processes", envSmoke, envFull)
	}
}
