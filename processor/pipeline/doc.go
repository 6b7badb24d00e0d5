// Package pipeline is the processor's delivery loop: for each raw-stream
// partition this replica owns (processor/partition decides which, with the
// other replicas), a durable pull consumer on every raw stream, processed
// one message after another so an entity's records keep their order;
// normalization, enrichment (processor/enrich: the pod
// and image of the event's container), publication of the event to the events
// stream with Nats-Msg-Id = event.id, detection (processor/detect) with each
// alert published to the alerts stream under Nats-Msg-Id = the alert id, and
// the input's ack only after JetStream acknowledged every output. Rejected records go to the dead-letter
// stream before their input is terminated, so nothing is dropped silently.
//
// It must not know about collectors or sinks, and it does no parsing itself:
// normalization belongs to processor/normalize.
package pipeline
