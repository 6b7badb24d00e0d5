// Package enrich is the processor's entity join: it learns, from the events
// that pass, which pod, namespace, node and image each container belongs
// to, and gives runtime events that lack them orchestrator.*,
// container.image.*, container.name/runtime and host.name.
//
// What it learns, by how far the source can be believed: Kubernetes audit
// pod objects (a create's spec: node and each container's image; a
// kubelet's status patch or a RequestResponse pod: container ids from
// status.containerStatuses; a binding: the node) rank highest; Docker
// events with io.kubernetes.* labels, Tetragon events with their pod and
// Falco alerts with k8s fields rank next and never overwrite what the API
// server said; procwatch and user JSON teach nothing (a compromised sidecar
// must not be able to rename another pod's containers), and neither does
// an event carrying crowsnest.spoofed_fields (its collector's identity
// could not vouch for what it claims). A container is
// found by its full id or the 12-character short id Docker and Falco print
// (Tetragon's 31-character id included).
//
// Memory is bounded: two caches (containers, pods), each of max_entries with
// least-recently-used eviction and a ttl after the entry was last learned;
// hits, misses, evictions and sizes are metrics (crowsnest_enrich_*). The
// cache holds copies of strings, never a record's bytes.
//
// It must not overwrite a field an event has, query the Kubernetes API or a
// container runtime, or block: it runs on the hot path between
// normalization and detection (processor/pipeline's Enricher).
package enrich
