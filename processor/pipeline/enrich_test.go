package pipeline_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/crowsnest-siem/crowsnest/bus/deadletter"
	"github.com/crowsnest-siem/crowsnest/bus/embedded/natstest"
	"github.com/crowsnest-siem/crowsnest/bus/headers"
	"github.com/crowsnest-siem/crowsnest/bus/topology"
	"github.com/crowsnest-siem/crowsnest/processor/normalize"
	"github.com/crowsnest-siem/crowsnest/processor/normalize/sources"
	"github.com/crowsnest-siem/crowsnest/processor/pipeline"
)

// TestEnrichmentIsPublished: with enrichment on (the default), an event
// whose source names only the container (Falco's short id) is published
// with the pod, namespace and image an earlier event of another source
// (Tetragon, with its pod) taught.
func TestEnrichmentIsPublished(t *testing.T) {
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	ctx := context.Background()
	tcfg := topology.NewDefaultConfig()
	if err := topology.Ensure(ctx, js, tcfg); err != nil {
		t.Fatal(err)
	}
	cfg := pipeline.NewDefaultConfig()
	cfg.Detect.Enabled = false
	reg, err := sources.NewRegistry(cfg.Normalize)
	if err != nil {
		t.Fatal(err)
	}
	norm, err := normalize.New(cfg.Normalize, reg)
	if err != nil {
		t.Fatal(err)
	}
	p, err := pipeline.New(js, norm, deadletter.NewPublisher(js), cfg, pipeline.Settings{
		Sources:  []string{"tetragon", "falco"},
		Consumer: tcfg.Consumers.Processor,
	})
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{js: js, run: p.Run}
	publish := func(source string, data string) {
		t.Helper()
		m := nats.NewMsg("crowsnest.raw." + source + ".node-1." + topology.KeyToken("node/node-1"))
		m.Data = []byte(data)
		m.Header.Set(headers.Node, "worker-1")
		if _, err := js.PublishMsg(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	const tetragon = `{"process_exec":{"process":{"exec_id":"d29ya2VyLTE6MTA3MDUyMDAwMDAwMDoyMTg5Mw==","pid":21893,"uid":0,"binary":"/bin/sh","start_time":"2026-03-10T09:01:10.050000000Z","pod":{"namespace":"shop","name":"payments-7d9f5c8b6-q4zrx","container":{"id":"containerd://06e93f41f884e998ffe84abdd3985f26f7dbe55fe67845ed56fcabdbe72aea5e","name":"payments","image":{"name":"registry.shop.internal/payments:1.14.2"}}}}},"node_name":"worker-1","time":"2026-03-10T09:01:10.052100000Z"}`
	const falco = `{"uuid":"0c4a61f2-5d3b-4e2a-9f1c-8b7a6d5e4f30","output":"shell","priority":"Notice","rule":"Terminal shell in container","time":"2026-03-10T09:01:10.053300000Z","output_fields":{"container.id":"06e93f41f884","evt.type":"execve","proc.name":"sh"},"source":"syscall","hostname":"worker-1"}`
	h.runUntil(t, func() {
		publish("tetragon", tetragon)
		h.waitFor(t, topology.EventsStream, 1) // learned before the alert arrives
		publish("falco", falco)
		h.waitFor(t, topology.EventsStream, 2)
	})
	s, err := js.Stream(ctx, topology.EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	subj, err := topology.EventSubject("falco")
	if err != nil {
		t.Fatal(err)
	}
	msg, err := s.GetLastMsgForSubject(ctx, subj)
	if err != nil {
		t.Fatal(err)
	}
	var ev struct {
		Orchestrator struct {
			Namespace string `json:"namespace"`
			Resource  struct {
				Name string `json:"name"`
			} `json:"resource"`
		} `json:"orchestrator"`
		Container struct {
			Image struct {
				Name string `json:"name"`
			} `json:"image"`
		} `json:"container"`
	}
	if err := json.Unmarshal(msg.Data, &ev); err != nil {
		t.Fatal(err)
	}
	if ev.Orchestrator.Namespace != "shop" || ev.Orchestrator.Resource.Name != "payments-7d9f5c8b6-q4zrx" ||
		ev.Container.Image.Name != "registry.shop.internal/payments:1.14.2" {
		t.Errorf("published falco event not enriched: %s", msg.Data)
	}
}
