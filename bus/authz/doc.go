// Package authz turns crowsnest's identities (each collector by id, the
// processor, each sink by name, the admin) into NATS nkey users with
// least-privilege publish/subscribe allow lists: a collector may publish
// only its own raw subjects, the processor only reads raw and writes
// events/alerts/its dead-letters, a sink only reads through its own durable
// consumers, and only the admin may manage streams (bus/topology.Ensure).
//
// Permissions derive from bus/topology's subject, stream and consumer
// names, so they cannot drift from what the components use. Every identity
// receives replies (JetStream publish acks, pull batches, API answers) under
// its own inbox prefix (InboxPrefix), which its client must set
// (natsconn.Config.InboxPrefix): no identity can subscribe to another's
// replies.
//
// It writes nkey seeds to files (mode 0600) and never logs or returns them
// in errors. It must not connect to NATS or start a server.
package authz
