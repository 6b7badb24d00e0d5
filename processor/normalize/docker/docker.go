package docker

import (
	"strconv"
	"strings"
	"time"

	"github.com/tidwall/gjson"

	"github.com/crowsnest-siem/crowsnest/processor/normalize"
	"github.com/crowsnest-siem/crowsnest/processor/normalize/internal/naturalid"
	"github.com/crowsnest-siem/crowsnest/schemas"
)

// Source is the name this mapper is registered under.
const Source = "docker"

var reasonNotDocker = normalize.NotSource(Source)

// Mapper maps Docker Engine events. It is stateless and safe for concurrent
// use.
type Mapper struct {
	lim normalize.Limits
}

var _ normalize.Mapper = (*Mapper)(nil)

// New returns a Mapper bounded by cfg's limits.
func New(cfg normalize.Config) *Mapper { return &Mapper{lim: cfg.Limits()} }

// NewFactory registers the mapper under [Source].
func NewFactory() normalize.Factory {
	return normalize.Factory{
		Source: Source,
		New:    func(cfg normalize.Config) (normalize.Mapper, error) { return New(cfg), nil },
	}
}

// message is an event's top level, read in one walk. The three generations
// of the format differ only here: before API 1.22 status/id/from, from 1.22
// to 1.24 both, since then Type/Action/Actor.
type message struct {
	status, id, from      string
	typ, action, actorID  string
	attrs                 gjson.Result
	timeSec, timeNano     gjson.Result
	hasLegacy, hasCurrent bool
}

// attributes are the Actor attributes the mapper reads; the others of a
// container or image event are its labels.
type attributes struct {
	name, image, exitCode, signal, execID, container string
	podName, podNamespace, k8sContainer              string
}

// Map maps one Docker event.
func (m *Mapper) Map(rec *normalize.Record, ev *schemas.Event) error {
	root := gjson.Parse(rec.Text())
	if !root.IsObject() {
		return normalize.Reject(reasonNotDocker, "a Docker event is a JSON object, got %s", normalize.TypeName(root))
	}
	var msg message
	root.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "status":
			msg.status, msg.hasLegacy = v.Str, msg.hasLegacy || v.Type == gjson.String
		case "id":
			msg.id = v.Str
		case "from":
			msg.from = v.Str
		case "Type":
			msg.typ = v.Str
		case "Action":
			msg.action, msg.hasCurrent = v.Str, v.Type == gjson.String
		case "Actor":
			v.ForEach(func(k, v gjson.Result) bool {
				switch k.Str {
				case "ID":
					msg.actorID = v.Str
				case "Attributes":
					msg.attrs = v
				}
				return true
			})
		case "time":
			msg.timeSec = v
		case "timeNano":
			msg.timeNano = v
		}
		return true
	})
	if !msg.hasCurrent {
		if !msg.hasLegacy {
			return normalize.Reject(reasonNotDocker, "neither Action nor status: not a Docker event")
		}
		msg.legacy()
	}
	if msg.action == "" || msg.typ == "" {
		return normalize.Reject(reasonNotDocker, "empty Type or Action: not a Docker event")
	}
	nanos, ok := eventNanos(msg.timeSec, msg.timeNano)
	if !ok {
		return normalize.Reject(normalize.ReasonMissingField, "no time or timeNano")
	}
	ev.Timestamp = time.Unix(0, nanos).UTC()

	// "exec_start: sh -c id", "health_status: healthy": the action, then
	// what it is about.
	action, detail, _ := strings.Cut(msg.action, ": ")
	if action == "" {
		return normalize.Reject(reasonNotDocker, "Action %.64q names no action", msg.action)
	}
	ev.Event.Kind = "event"
	ev.Event.Action = action
	ev.Event.Provider = msg.typ

	var a attributes
	m.attributes(&msg, &a, ev)
	if rec.Node != "" {
		// The engine does not say which host it runs on: the collector's
		// node does (the collector reads the local socket).
		ev.Host.Name = rec.Node
		ev.Related.Hosts = m.lim.AppendUnique(ev.Related.Hosts, rec.Node, &ev.Crowsnest.Truncated)
	}

	switch msg.typ {
	case "container":
		m.container(&msg, &a, action, detail, ev)
	case "image":
		m.image(&msg, &a, ev)
	default:
		// network, volume, daemon and the swarm objects: configuration of
		// the engine. A network or volume event names the container it
		// attaches to.
		ev.Container.ID = a.container
		if ev.Container.ID != "" {
			ev.Container.Runtime = "docker"
		}
	}
	c, t, class, activity := categorize(msg.typ, action)
	ev.Event.Category = append(ev.Event.Category, c)
	ev.Event.Type = append(ev.Event.Type, t)
	ev.OCSF.ClassUID, ev.OCSF.ActivityID = class, activity
	ev.OCSF.CategoryUID = class / 1000
	ev.OCSF.SeverityID = 1 // Informational
	if action == "oom" {
		ev.Event.Severity, ev.OCSF.SeverityID = 47, 3 // the kernel killed the container's process
	}
	ev.Message = summary(&msg, &a, action, detail)

	var buf [20]byte
	ev.Event.ID = naturalid.ID(Source, msg.actorID, msg.action, string(strconv.AppendInt(buf[:0], nanos, 10)))
	return nil
}

// legacy fills Type, Action and Actor from a pre-1.22 event: with "from" it
// is about a container of that image, without it about the image "id".
func (msg *message) legacy() {
	msg.action, msg.actorID = msg.status, msg.id
	if msg.from != "" {
		msg.typ = "container"
	} else {
		msg.typ = "image"
	}
}

// attributes reads the Actor attributes; the ones the mapper does not name
// become container.labels for container and image events (Docker puts the
// object's labels there).
func (m *Mapper) attributes(msg *message, a *attributes, ev *schemas.Event) {
	trunc := &ev.Crowsnest.Truncated
	labels := msg.typ == "container" || msg.typ == "image"
	msg.attrs.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "name":
			a.name = v.Str
		case "image":
			a.image = v.Str
		case "exitCode":
			a.exitCode = v.Str
		case "signal":
			a.signal = v.Str
		case "execID":
			a.execID = v.Str
		case "container":
			a.container = v.Str
		default:
			if !labels {
				return true
			}
			switch k.Str {
			case "io.kubernetes.pod.name":
				a.podName = v.Str
			case "io.kubernetes.pod.namespace":
				a.podNamespace = v.Str
			case "io.kubernetes.container.name":
				a.k8sContainer = v.Str
			}
			if v.Type == gjson.String {
				ev.Container.Labels = m.lim.Put(ev.Container.Labels, k.Str, v.Str, trunc)
			}
		}
		return true
	})
	if msg.hasLegacy && msg.typ == "container" && a.image == "" {
		a.image = msg.from
	}
}

func (m *Mapper) container(msg *message, a *attributes, action, detail string, ev *schemas.Event) {
	c := &ev.Container
	c.ID, c.Name, c.Runtime = msg.actorID, a.name, "docker"
	c.Image.Name = a.image
	if a.podName != "" {
		// A container Kubernetes started through the Docker engine
		// (dockershim, cri-dockerd) carries its pod in labels.
		o := &ev.Orchestrator
		o.Type, o.Namespace = "kubernetes", a.podNamespace
		o.Resource.Type, o.Resource.Name = "pods", a.podName
	}
	switch action {
	case "die", "exec_die":
		if code, err := strconv.ParseInt(a.exitCode, 10, 64); err == nil {
			ev.Process.ExitCode = &code
		}
	}
	switch action {
	case "exec_create", "exec_start", "exec_die", "exec_detach":
		p := &ev.Process
		p.EntityID = a.execID
		if detail == "" {
			return
		}
		// The engine joins the command's argv with spaces: quoting is lost,
		// so the split is the best reading, not the exact argv.
		p.CommandLine = detail
		trunc := &ev.Crowsnest.Truncated
		for arg := range strings.FieldsSeq(detail) {
			p.Args = m.lim.Append(p.Args, arg, trunc)
		}
		if len(p.Args) > 0 {
			argv0 := p.Args[0]
			if strings.HasPrefix(argv0, "/") {
				p.Executable = argv0
			}
			p.Name = argv0[strings.LastIndexByte(argv0, '/')+1:]
		}
	}
}

// image maps an image event. The Actor ID is the reference the action was
// about ("nginx@sha256:…" for a pull by digest, "alpine:latest"), or for
// tag, untag and delete the image id, with the reference in "name".
func (m *Mapper) image(msg *message, a *attributes, ev *schemas.Event) {
	img := &ev.Container.Image
	if isImageID(msg.actorID) {
		img.Name = a.name
		img.Hash.All = m.lim.Append(img.Hash.All, msg.actorID, &ev.Crowsnest.Truncated)
		return
	}
	img.Name = msg.actorID
	if img.Name == "" {
		img.Name = a.name
	}
}

func isImageID(s string) bool {
	return len(s) == len("sha256:")+64 && strings.HasPrefix(s, "sha256:")
}

// summary is the event as `docker events` prints it, short: type, action,
// object, and the attribute that says what happened.
func summary(msg *message, a *attributes, action, detail string) string {
	obj := msg.actorID
	if a.name != "" && (msg.typ == "container" || msg.typ == "network" || isImageID(obj)) {
		obj = a.name
	}
	s := msg.typ + " " + action
	if obj != "" {
		s += " " + obj
	}
	switch {
	case detail != "":
		s += ": " + detail
	case a.exitCode != "":
		s += " (exitCode=" + a.exitCode + ")"
	case a.signal != "":
		s += " (signal=" + a.signal + ")"
	case a.container != "":
		s += " (container=" + a.container + ")"
	}
	return s
}

// eventNanos is the event's time in nanoseconds: timeNano when set, else
// time, as the Docker CLI reads them. (collectors/docker resumes from time
// when the two disagree by more than a second; for the event's own time the
// engine's client is the reference, and docker/cli's recorded events, whose
// time and timeNano disagree, print by timeNano.)
func eventNanos(sec, nano gjson.Result) (int64, bool) {
	if n := nano.Int(); n > 0 {
		return n, true
	}
	if s := sec.Int(); s > 0 && s < 1<<33 { // before year 2242: seconds, not garbage
		return s * 1e9, true
	}
	return 0, false
}
