// Package docker maps Docker Engine events — the JSON objects GET /events
// streams, one per raw record as collectors/docker publishes them — to
// crowsnest events. All three generations of the format map: the pre-1.22
// status/id/from, the 1.22–1.24 events carrying both, and the current
// Type/Action/Actor/scope/timeNano.
//
// Container events become ECS container.* (id, name, image, labels,
// runtime docker); a container Kubernetes started through the engine gains
// its pod and namespace from the io.kubernetes.* labels. exec_create,
// exec_start and exec_die carry the exec as process.* (process.entity_id is
// the exec id; the command line is the engine's space-joined argv, so
// quoting is lost); die and exec_die their exit code. Image events name the
// image reference (the Normalizer splits registry, repository, tag and
// digest). Network and volume events name the container they attach to.
// host.name is the collector's node: the engine does not say which host it
// is. event.id is derived from the object, the action and the event's
// nanosecond time.
//
// OCSF: a container's run-time events (start, die, exec, kill, oom) are
// Process Activity (1007: start and exec_start Launch, die and exec_die
// Terminate, the rest Other) — a container is the process tree it runs;
// configuration of the engine (create and destroy, image pulls, networks,
// volumes, the daemon) has no OCSF class and is a Base Event (0, Other).
// The full table is on [categorize]; DIFFERENCES.md compares the mapping
// with Elastic's Docker integration.
//
// It must not look anything up (no engine inspect, no image metadata): a
// record maps on its own; processor/enrich joins containers to pods.
package docker
