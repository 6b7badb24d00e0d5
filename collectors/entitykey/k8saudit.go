package entitykey

import (
	"strings"

	"github.com/tidwall/gjson"
)

// K8sAudit keys a Kubernetes audit event (audit.k8s.io/v1 Event) by the
// namespace of its object — a namespace's own name when the object is the
// namespace — and a cluster-scoped request by its user. The Cloud Audit Logs
// shape GKE exports is read the same way from protoPayload.
func K8sAudit(data []byte) string {
	if ref := gjson.GetBytes(data, "objectRef"); ref.Exists() {
		if ns := ref.Get("namespace").String(); ns != "" {
			return Namespace(ns)
		}
		if ref.Get("resource").String() == "namespaces" {
			if name := ref.Get("name").String(); name != "" {
				return Namespace(name)
			}
		}
		return User(gjson.GetBytes(data, "user.username").String())
	}
	if pp := gjson.GetBytes(data, "protoPayload"); pp.Exists() {
		// resourceName: "core/v1/namespaces/<ns>/pods/<name>" or ".../namespaces/<ns>".
		if ns := namespaceOfPath(pp.Get("resourceName").String()); ns != "" {
			return Namespace(ns)
		}
		return User(pp.Get("authenticationInfo.principalEmail").String())
	}
	return User(gjson.GetBytes(data, "user.username").String())
}

func namespaceOfPath(path string) string {
	_, rest, ok := strings.Cut(path, "namespaces/")
	if !ok {
		return ""
	}
	ns, _, _ := strings.Cut(rest, "/")
	return ns
}
