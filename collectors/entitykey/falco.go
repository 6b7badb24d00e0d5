package entitykey

import "github.com/tidwall/gjson"

// Falco keys a Falco alert by the pod's namespace (output_fields
// k8s.ns.name), and a host event, outside any pod, by the node (hostname).
func Falco(data []byte) string {
	if ns := gjson.GetBytes(data, `output_fields.k8s\.ns\.name`).String(); ns != "" && ns != "<NA>" {
		return Namespace(ns)
	}
	return Node(gjson.GetBytes(data, "hostname").String())
}
