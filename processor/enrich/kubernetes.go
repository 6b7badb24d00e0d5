package enrich

import (
	"strings"

	"github.com/tidwall/gjson"

	"github.com/crowsnest-siem/crowsnest/schemas"
)

// learnPod reads a Kubernetes audit event about a pod: the pod object it
// carries (the response when the policy kept it, else the request — a
// create's pod, a kubelet's status patch) teaches the pod's node and each
// container's image from its spec, and, once the kubelet reported them,
// each container's id from status.containerStatuses; a binding teaches the
// node. A failed request teaches nothing.
func (e *Enricher) learnPod(ev *schemas.Event) {
	a := &ev.Kubernetes.Audit
	if a.ResponseStatus.Code >= 400 {
		return
	}
	ref := &a.ObjectRef
	switch ref.Subresource {
	case "", "status", "binding", "ephemeralcontainers":
	default:
		return // exec, log, portforward: not the pod object
	}
	obj := gjson.ParseBytes(a.ResponseObject)
	if !obj.IsObject() || obj.Get("kind").Str == "Status" {
		obj = gjson.ParseBytes(a.RequestObject)
	}
	if !obj.IsObject() {
		return
	}
	namespace, name := ref.Namespace, ref.Name
	var spec, status, meta, target gjson.Result
	var kind string
	obj.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "kind":
			kind = v.Str
		case "metadata":
			meta = v
		case "spec":
			spec = v
		case "status":
			status = v
		case "target":
			target = v
		}
		return true
	})
	if kind == "Binding" || ref.Subresource == "binding" {
		e.learnBinding(namespace, firstNonEmpty(name, meta.Get("name").Str), target.Get("name").Str)
		return
	}
	if kind != "" && kind != "Pod" {
		return // a PodList, an Eviction…
	}
	if namespace == "" {
		namespace = meta.Get("namespace").Str
	}
	if name == "" {
		name = meta.Get("name").Str
	}
	if namespace == "" || name == "" {
		return
	}
	now := e.now().UnixNano()
	e.mu.Lock()
	defer e.mu.Unlock()

	key := podKey(namespace, name)
	var p pod
	if old, ok := e.pods.get(key, now); ok {
		p = *old
	}
	p.rank = trustAPIServer
	if node := spec.Get("nodeName").Str; node != "" && node != p.node {
		p.node = strings.Clone(node)
	}
	for _, list := range [...]string{"containers", "initContainers", "ephemeralContainers"} {
		spec.Get(list).ForEach(func(_, c gjson.Result) bool {
			p.setContainer(c.Get("name").Str, c.Get("image").Str)
			return true
		})
	}
	e.pods.put(key, p, now)
	e.stats.Learned.Add(1)

	for _, list := range [...]string{"containerStatuses", "initContainerStatuses", "ephemeralContainerStatuses"} {
		status.Get(list).ForEach(func(_, s gjson.Result) bool {
			e.learnStatus(namespace, name, &p, s, now)
			return true
		})
	}
}

// learnStatus records one container status: its id (runtime://<id>), name
// and image, with the digest the node pulled (imageID).
func (e *Enricher) learnStatus(namespace, podName string, p *pod, s gjson.Result, now int64) {
	var cname, cid, img, imgID string
	s.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "name":
			cname = v.Str
		case "containerID":
			cid = v.Str
		case "image":
			img = v.Str
		case "imageID":
			imgID = v.Str
		}
		return true
	})
	runtime, id, ok := strings.Cut(cid, "://")
	if !ok || id == "" {
		return // not started yet
	}
	if specImage := p.image(cname); specImage != "" {
		img = specImage // the reference the pod asked for; status may name it by digest
	}
	c := container{name: cname, runtime: runtime, namespace: namespace, pod: podName, node: p.node, rank: trustAPIServer}
	c.image = parseImage(img)
	if d := digestOf(imgID); d != "" && c.image.digest == "" {
		c.image.digest = d
	}
	e.store(id, c, now)
}

func (e *Enricher) learnBinding(namespace, name, node string) {
	if namespace == "" || name == "" || node == "" {
		return
	}
	now := e.now().UnixNano()
	e.mu.Lock()
	defer e.mu.Unlock()
	key := podKey(namespace, name)
	var p pod
	if old, ok := e.pods.get(key, now); ok {
		p = *old
	}
	p.rank = trustAPIServer
	p.node = strings.Clone(node)
	e.pods.put(key, p, now)
	e.stats.Learned.Add(1)
}

func (p *pod) setContainer(name, image string) {
	if name == "" || image == "" {
		return
	}
	for i := range p.containers[:p.n] {
		if p.containers[i].name == name {
			if p.containers[i].image != image {
				p.containers[i].image = strings.Clone(image)
			}
			return
		}
	}
	if p.n < maxPodContainers {
		p.containers[p.n] = podContainer{strings.Clone(name), strings.Clone(image)}
		p.n++
	}
}

func (p *pod) image(name string) string {
	for _, c := range p.containers[:p.n] {
		if c.name == name {
			return c.image
		}
	}
	return ""
}

// digestOf returns the sha256:… of an imageID ("docker-pullable://repo@sha256:…",
// "repo@sha256:…" or "sha256:…").
func digestOf(imageID string) string {
	if i := strings.LastIndexByte(imageID, '@'); i >= 0 {
		imageID = imageID[i+1:]
	}
	if strings.HasPrefix(imageID, "sha256:") && len(imageID) == len("sha256:")+64 {
		return imageID
	}
	return ""
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
