package topology_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/crowsnest-siem/crowsnest/bus/embedded/natstest"
	"github.com/crowsnest-siem/crowsnest/bus/topology"
)

func TestVerify(t *testing.T) {
	ctx := testContext(t)
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	cfg := topology.NewDefaultConfig()

	// Nothing exists: one error naming every missing stream and the setup command.
	err := topology.Verify(ctx, js, cfg, topology.SinkStreams())
	var missing *topology.MissingError
	if !errors.As(err, &missing) || !errors.Is(err, topology.ErrMissing) {
		t.Fatalf("Verify on an empty server = %v, want a MissingError", err)
	}
	if want := []string{"CROWSNEST_ALERTS", "CROWSNEST_DLQ", "CROWSNEST_EVENTS"}; !slices.Equal(missing.Streams, want) {
		t.Errorf("missing %v, want %v", missing.Streams, want)
	}
	for _, s := range []string{"CROWSNEST_EVENTS", "crowsnest nats-setup", "ensure_topology: false"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not name %q", err, s)
		}
	}

	// After Ensure everything a stage needs is there.
	if err := topology.Ensure(ctx, js, cfg); err != nil {
		t.Fatal(err)
	}
	for name, names := range map[string][]string{"processor": topology.ProcessorStreams(), "sink": topology.SinkStreams()} {
		if err := topology.Verify(ctx, js, cfg, names); err != nil {
			t.Errorf("%s: Verify after Ensure = %v", name, err)
		}
	}
	if n := len(topology.ProcessorStreams()); n != len(topology.Sources())+4 {
		t.Errorf("ProcessorStreams has %d names, want every raw stream, events, alerts, dead-letter and state", n)
	}

	// A stage expecting another partition count is told, not started.
	other := cfg
	other.Partitions = cfg.Partitions * 2
	err = topology.Verify(ctx, js, other, topology.ProcessorStreams())
	if !errors.Is(err, topology.ErrIncompatible) || errors.Is(err, topology.ErrMissing) || !strings.Contains(err.Error(), "partitions") {
		t.Fatalf("Verify with other partitions = %v, want an incompatible-partitions error", err)
	}

	// Limits are the admin's: a stage configured with other limits verifies.
	limits := cfg
	limits.Events.MaxBytes *= 2
	if err := topology.Verify(ctx, js, limits, topology.SinkStreams()); err != nil {
		t.Errorf("Verify with other limits = %v, want nil", err)
	}

	// A deleted stream is reported alone.
	if err := js.DeleteStream(ctx, topology.DeadLetterStream); err != nil {
		t.Fatal(err)
	}
	err = topology.Verify(ctx, js, cfg, topology.SinkStreams())
	if !errors.As(err, &missing) || !slices.Equal(missing.Streams, []string{"CROWSNEST_DLQ"}) || !strings.HasPrefix(err.Error(), "stream CROWSNEST_DLQ does not exist") {
		t.Fatalf("Verify after deleting the dead-letter stream = %v", err)
	}
}
