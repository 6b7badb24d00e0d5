package topology_test

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/crowsnest-siem/crowsnest/bus/topology"
)

func ExampleRawSubject() {
	collector := topology.SanitizeToken("Node-7.eu-west-1.compute.internal")
	subj, err := topology.RawSubject(topology.SourceK8sAudit, collector, topology.KeyToken("ns/kube-system"))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(subj)
	// Output: crowsnest.raw.k8s_audit.node-7_eu-west-1_compute_internal.00297f183d775640
}

// A stage at start: make sure the topology exists, then attach to its
// consumers.
func ExampleEnsure() {
	run := func(ctx context.Context, js jetstream.JetStream, cfg topology.Config) error {
		if err := topology.Ensure(ctx, js, cfg); err != nil {
			return err // an *IncompatibleError says which stream and what to do
		}
		for _, d := range topology.ProcessorConsumers(cfg.Partitions, cfg.Consumers.Processor) {
			if _, err := topology.EnsureConsumer(ctx, js, d); err != nil {
				return err
			}
		}
		return nil
	}
	_ = run
}
