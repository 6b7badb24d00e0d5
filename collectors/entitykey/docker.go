package entitykey

import "github.com/tidwall/gjson"

// Docker keys a Docker Engine event by the namespace of the Kubernetes pod
// its container belongs to (the io.kubernetes.pod.namespace label the
// kubelet sets); other events are the node's (""; the docker collector runs
// on its node).
func Docker(data []byte) string {
	return Namespace(gjson.GetBytes(data, `Actor.Attributes.io\.kubernetes\.pod\.namespace`).String())
}
