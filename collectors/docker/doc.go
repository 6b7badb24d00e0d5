// Package docker follows the Docker Engine's event stream (GET /events on
// the engine's unix socket): container create/start/die/oom/exec_create/
// exec_start, image pull (with digest), network and volume events, each
// published as its own raw record, bytes as the engine sent them.
//
// A lost connection (engine restart, socket hiccup) is resumed with
// since=<time of the last acknowledged event>, so no gap is left; the
// events at that instant the engine sends again carry the same content and
// so the same message id (msgid.FromContent), which JetStream drops. The
// position is checkpointed durably after acknowledgement, so a collector
// restart resumes too. An event that is not a JSON object is
// dead-lettered.
//
// It must not talk to the engine beyond reading events (no inspect, no
// exec): the socket is powerful, and the processor enriches.
package docker
