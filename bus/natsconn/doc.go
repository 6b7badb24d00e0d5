// Package natsconn connects a crowsnest process to NATS: the user's
// connection config (URL, credentials, TLS, reconnect behaviour), its
// validation, and Connect, which returns a connection and a JetStream handle
// and logs the connection's life (connects, disconnects, reconnects, async
// errors) through slog.
//
// Defaults favour a pipeline that must not lose data: reconnect forever,
// buffer publishes while disconnected, and wait at start until the server is
// reachable (bounded by the caller's context) rather than failing the
// process.
//
// It must never log or wrap credentials (creds and nkey contents, passwords
// in URLs), and must not declare streams or publish (bus/topology and the
// stages do).
package natsconn
