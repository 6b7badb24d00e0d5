// Package k8saudit maps Kubernetes audit records to crowsnest events: the
// kube-apiserver's audit.k8s.io/v1 Event (log or webhook backend, EventList
// batches included), the GKE Cloud Audit Logs entry (protoPayload with an
// io.k8s.* methodName) and the AKS diagnostic-log wrapper (properties.log,
// and Event Hub "records" batches).
//
// The ECS fields follow Elastic's own Kubernetes integration field for field
// where it sets them; DIFFERENCES.md lists, and the corpus test enforces,
// every deliberate difference. On top of that the mapper sets the ECS event
// categorization, the OCSF API Activity class, and kubernetes.pod_spec.*: the
// security-relevant settings of a submitted pod spec (privileged, host
// namespaces, hostPath volumes, added capabilities, root, privilege
// escalation, images), also inside workload templates.
//
// It must not allocate maps or parse into map[string]any per record, reach
// out to the API server, or decide whether an event is suspicious: that is
// the detection stage's job.
package k8saudit
