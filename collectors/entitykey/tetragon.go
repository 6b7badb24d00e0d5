package entitykey

import "github.com/tidwall/gjson"

// Tetragon keys a Tetragon export event ({"process_exec": {...}, "node_name":
// ...}) by its process's pod namespace, and a host process by the node.
func Tetragon(data []byte) string {
	var ns string
	gjson.ParseBytes(data).ForEach(func(_, v gjson.Result) bool {
		if v.IsObject() {
			ns = v.Get("process.pod.namespace").String()
		}
		return ns == ""
	})
	if ns != "" {
		return Namespace(ns)
	}
	return Node(gjson.GetBytes(data, "node_name").String())
}
