package authz

import (
	"github.com/crowsnest-siem/crowsnest/bus/topology"
)

// Role is what an identity does in the pipeline.
type Role string

// The roles.
const (
	RoleCollector Role = "collector"
	RoleProcessor Role = "processor"
	RoleSink      Role = "sink"
	RoleAdmin     Role = "admin"
	// RoleNodeCollectors is Config.NodeCollectors' shared identity.
	RoleNodeCollectors Role = "node-collectors"
)

// Identity is one NATS user: a role and, for collectors and sinks, the
// collector id or sink name it is bound to.
type Identity struct {
	Role Role
	ID   string // collector id or sink name; empty for processor and admin
}

// Name is the identity's user name and seed file stem: collector-<id>,
// processor, sink-<name>, admin.
func (i Identity) Name() string {
	if i.ID == "" {
		return string(i.Role)
	}
	return string(i.Role) + "-" + i.ID
}

// InboxPrefix is the reply-subject prefix the identity's client must use
// (natsconn.Config.InboxPrefix, nats.CustomInboxPrefix): _INBOX_<name>. The
// identity may subscribe there and nowhere else it does not own, so it
// cannot read other clients' JetStream replies under the shared _INBOX.
func (i Identity) InboxPrefix() string { return "_INBOX_" + i.Name() }

// Permissions are allow lists; anything not allowed is denied. PublishDeny
// carves exceptions out of Publish (only the node-collectors identity has
// any: the collector ids that have identities of their own).
type Permissions struct {
	Publish     []string
	PublishDeny []string
	Subscribe   []string
}

// Identities returns every identity cfg describes: the admin, the
// processor, then collectors and sinks in cfg's order.
func (c Config) Identities() []Identity {
	ids := []Identity{{Role: RoleAdmin}, {Role: RoleProcessor}}
	for _, id := range c.Collectors {
		ids = append(ids, Identity{Role: RoleCollector, ID: id})
	}
	if c.NodeCollectors {
		ids = append(ids, Identity{Role: RoleNodeCollectors})
	}
	for _, n := range c.Sinks {
		ids = append(ids, Identity{Role: RoleSink, ID: n})
	}
	return ids
}

// JetStream API subjects (nats-server's $JS.API.* request subjects), in
// the form each client call uses. Found by running the components against a
// server with these permissions and reading the violations (see
// matrix_test.go); a nats.go upgrade that needs another is caught there.
const (
	jsAPI            = "$JS.API."
	apiAccountInfo   = jsAPI + "INFO"               // CreateOrUpdateKeyValue
	apiStreamInfo    = jsAPI + "STREAM.INFO."       // js.Stream, KV bind
	apiStreamCreate  = jsAPI + "STREAM.CREATE."     // CreateOrUpdateKeyValue
	apiStreamUpdate  = jsAPI + "STREAM.UPDATE."     // CreateOrUpdateKeyValue on an existing bucket
	apiStreamMsgGet  = jsAPI + "STREAM.MSG.GET."    // kv.Get without direct gets
	apiDirectGet     = jsAPI + "DIRECT.GET."        // kv.Get with allow_direct
	apiConsumerInfo  = jsAPI + "CONSUMER.INFO."     // js.Consumer
	apiConsumerNext  = jsAPI + "CONSUMER.MSG.NEXT." // Fetch, Consume, Messages
	apiConsumerMake  = jsAPI + "CONSUMER.CREATE."   // CreateOrUpdateConsumer, KV watchers
	apiConsumerDel   = jsAPI + "CONSUMER.DELETE."   // a KV watcher's ordered consumer on Stop
	apiConsumerUnpin = jsAPI + "CONSUMER.UNPIN."    // the processor's pinned priority group
	jsAck            = "$JS.ACK."                   // Ack, Nak, Term, InProgress
	kvPut            = "$KV."                       // kv.Put, Create, Update, Delete
)

// Permissions returns identity id's allow lists.
func (c Config) Permissions(id Identity) Permissions {
	inbox := id.InboxPrefix() + ".>"
	switch id.Role {
	case RoleCollector:
		// Only this collector's token in the raw subject, any source and
		// key; likewise its dead-letters
		// (crowsnest.dlq.collector.<source>.<collector>), so one node can
		// neither send records nor dead-letter them as another.
		return Permissions{
			Publish: []string{
				topology.RawSubjectPrefix + ".*." + id.ID + ".*",
				topology.DeadLetterSubjectPrefix + "." + topology.CollectorStage + ".*." + id.ID,
			},
			Subscribe: []string{inbox},
		}
	case RoleNodeCollectors:
		// Any collector token (a node's name, unknown in advance), except
		// the collectors with identities of their own: wildcards are whole
		// tokens, so the exceptions are a deny list.
		var deny []string
		for _, other := range c.Collectors {
			deny = append(deny,
				topology.RawSubjectPrefix+".*."+other+".*",
				topology.DeadLetterSubjectPrefix+"."+topology.CollectorStage+".*."+other,
			)
		}
		return Permissions{
			Publish: []string{
				topology.RawSubjectPrefix + ".*.*.*",
				topology.DeadLetterSubjectPrefix + "." + topology.CollectorStage + ".*.*",
			},
			PublishDeny: deny,
			Subscribe:   []string{inbox},
		}
	case RoleProcessor:
		var pub []string
		for _, src := range topology.Sources() {
			stream, _ := topology.RawStream(src) // src comes from Sources: valid
			pub = append(pub, apiStreamInfo+stream)
			for p := range c.partitions() {
				// By name: a wildcard can only be a whole token, and
				// CONSUMER.CREATE.<stream>.* would let it create any consumer.
				c := stream + "." + topology.ProcessorConsumerName(p)
				pub = append(pub,
					apiConsumerMake+c, // the pipeline ensures its consumers
					apiConsumerMake+c+".>",
					apiConsumerInfo+c,
					apiConsumerNext+c,
					apiConsumerUnpin+c,
					jsAck+c+".>",
				)
			}
		}
		for _, bucket := range []string{topology.StateBucket, topology.ProcessorsBucket} {
			stream := "KV_" + bucket
			pub = append(pub,
				apiStreamInfo+stream,
				apiStreamMsgGet+stream,
				apiDirectGet+stream+".>",
				apiConsumerMake+stream+".>",
				apiConsumerDel+stream+".>",
				kvPut+bucket+".>",
			)
		}
		// The processor creates its membership bucket itself (with its
		// lease as TTL); it may create or update that one stream, nothing else.
		// CreateOrUpdateKeyValue asks for the account's JetStream info
		// first (read-only: usage and limits).
		// Stream info (configuration and counts, no message) on the streams
		// it writes, so that without management rights it can still verify
		// the topology exists (topology.Verify) before it starts.
		for _, stream := range []string{topology.EventsStream, topology.AlertsStream, topology.DeadLetterStream} {
			pub = append(pub, apiStreamInfo+stream)
		}
		pub = append(pub,
			apiAccountInfo,
			apiStreamCreate+"KV_"+topology.ProcessorsBucket,
			apiStreamUpdate+"KV_"+topology.ProcessorsBucket,
			topology.EventSubjectPrefix+".*",
			topology.AlertSubjectPrefix+".*",
			topology.DeadLetterSubjectPrefix+"."+topology.ProcessorStage+".*",
		)
		return Permissions{Publish: pub, Subscribe: []string{inbox}}
	case RoleSink:
		durable := topology.SinkConsumerPrefix + id.ID
		var pub []string
		for _, stream := range []string{topology.EventsStream, topology.AlertsStream} {
			// The runner ensures its own consumers (sink.Runner.Start), so it
			// may create and update them, by name: never another sink's.
			pub = append(pub,
				apiConsumerMake+stream+"."+durable,
				apiConsumerMake+stream+"."+durable+".>",
				apiConsumerInfo+stream+"."+durable,
				apiConsumerNext+stream+"."+durable,
				jsAck+stream+"."+durable+".>",
			)
		}
		// Stream info on what it reads and writes, for topology.Verify.
		for _, stream := range topology.SinkStreams() {
			pub = append(pub, apiStreamInfo+stream)
		}
		pub = append(pub, topology.DeadLetterSubjectPrefix+"."+durable+".*")
		return Permissions{Publish: pub, Subscribe: []string{inbox}}
	case RoleAdmin:
		// topology.Ensure: streams, consumers, buckets. The admin publishes
		// no data and reads none.
		return Permissions{Publish: []string{jsAPI + ">"}, Subscribe: []string{inbox}}
	}
	return Permissions{} // unknown role: nothing allowed
}
