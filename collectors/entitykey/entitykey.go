package entitykey

import "github.com/crowsnest-siem/crowsnest/bus/topology"

// Key prefixes. A namespace, a user and a node of the same name are
// different entities.
const (
	nsPrefix   = "ns/"
	userPrefix = "user/"
	nodePrefix = "node/"
)

// Namespace is the key of a Kubernetes namespace ("" for none).
func Namespace(ns string) string {
	if ns == "" {
		return ""
	}
	return nsPrefix + ns
}

// User is the key of a user acting outside any namespace ("" for none).
func User(name string) string {
	if name == "" {
		return ""
	}
	return userPrefix + name
}

// Node is the key of a node's host-level events ("" for none).
func Node(name string) string {
	if name == "" {
		return ""
	}
	return nodePrefix + name
}

// Of returns the key of a raw record of source, or "" when the record does
// not name its entity (or source has no key in its records: auditd and json,
// keyed by the collector's node; procwatch, keyed by the collector from
// POD_NAMESPACE).
func Of(source string, data []byte) string {
	switch source {
	case topology.SourceK8sAudit:
		return K8sAudit(data)
	case topology.SourceFalco:
		return Falco(data)
	case topology.SourceDocker:
		return Docker(data)
	case topology.SourceTetragon:
		return Tetragon(data)
	}
	return ""
}
