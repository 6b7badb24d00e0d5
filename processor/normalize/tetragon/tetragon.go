package tetragon

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"

	"github.com/tidwall/gjson"

	"github.com/crowsnest-siem/crowsnest/processor/normalize"
	"github.com/crowsnest-siem/crowsnest/schemas"
)

// Source is the name this mapper is registered under.
const Source = "tetragon"

var reasonNotTetragon = normalize.NotSource(Source)

// OCSF classes this mapper emits (category in the hundreds digit).
const (
	ocsfProcessActivity    = 1007 // System Activity
	ocsfFileActivity       = 1001
	ocsfKernelExtension    = 1002
	ocsfModuleActivity     = 1005
	ocsfNetworkActivity    = 4001 // Network Activity
	ocsfBaseEvent          = 0
	ocsfCategorySystem     = 1
	ocsfCategoryNetwork    = 4
	ocsfCategoryUncategory = 0
	ocsfActivityOther      = 99
)

// Mapper maps Tetragon events. It is stateless and safe for concurrent use.
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

// envelope is a GetEventsResponse: exactly one event member beside the node,
// cluster and time.
type envelope struct {
	kind                        string // process_exec, process_kprobe, …
	body                        gjson.Result
	events                      int
	nodeName, clusterName, time string
}

// body is the members of an event body the mapper reads, in one walk.
type body struct {
	process, parent, args, ret       gjson.Result
	functionName, policyName, action string
	subsys, event, symbol, path      string // tracepoint, uprobe, loader
	signal, throttleType, cgroup     string
	status                           gjson.Result
	srcIP, dstIP, ip, protocol       string // legacy connect/close/listen
	srcPort, dstPort, port           int64
}

// Map maps one Tetragon event.
func (m *Mapper) Map(rec *normalize.Record, ev *schemas.Event) error {
	root := gjson.Parse(rec.Text())
	if !root.IsObject() {
		return normalize.Reject(reasonNotTetragon, "a Tetragon event is a JSON object, got %s", normalize.TypeName(root))
	}
	var e envelope
	root.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "node_name":
			e.nodeName = v.Str
		case "cluster_name":
			e.clusterName = v.Str
		case "time":
			e.time = v.Str
		case "node_labels", "aggregation_info":
		default:
			if strings.HasPrefix(k.Str, "process_") && v.IsObject() {
				e.kind, e.body = k.Str, v
				e.events++
			}
		}
		return true
	})
	switch {
	case e.events == 0:
		return normalize.Reject(reasonNotTetragon, "no process_* event member")
	case e.events > 1:
		return normalize.Reject(reasonNotTetragon, "%d process_* event members, want one", e.events)
	}

	var b body
	e.body.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "process":
			b.process = v
		case "parent":
			b.parent = v
		case "args":
			b.args = v
		case "return":
			b.ret = v
		case "function_name":
			b.functionName = v.Str
		case "policy_name":
			b.policyName = v.Str
		case "action":
			b.action = v.Str
		case "subsys":
			b.subsys = v.Str
		case "event":
			b.event = v.Str
		case "symbol":
			b.symbol = v.Str
		case "path":
			b.path = v.Str
		case "signal":
			b.signal = v.Str
		case "status":
			b.status = v
		case "type":
			b.throttleType = v.Str
		case "cgroup":
			b.cgroup = v.Str
		case "source_ip":
			b.srcIP = v.Str
		case "destination_ip":
			b.dstIP = v.Str
		case "ip":
			b.ip = v.Str
		case "protocol":
			b.protocol = v.Str
		case "source_port":
			b.srcPort = v.Int()
		case "destination_port":
			b.dstPort = v.Int()
		case "port":
			b.port = v.Int()
		}
		return true
	})

	trunc := &ev.Crowsnest.Truncated
	ev.Event.Kind = "event"
	ev.Event.Provider = e.kind
	ev.Timestamp = normalize.ParseTime(e.time)
	if e.nodeName != "" {
		ev.Host.Name = e.nodeName
		ev.Related.Hosts = m.lim.AppendUnique(ev.Related.Hosts, e.nodeName, trunc)
	}
	ev.Orchestrator.Cluster.Name = e.clusterName
	ev.Rule.Name = b.policyName

	execID, startTime := m.process(b.process, ev)
	m.parent(b.parent, ev)
	if ev.Timestamp.IsZero() && e.kind == "process_exec" {
		ev.Timestamp = normalize.ParseTime(startTime)
	}

	switch e.kind {
	case "process_exec":
		ev.Event.Action = "exec"
		setKind(ev, "process", "start", ocsfProcessActivity, 1) // Launch
	case "process_exit":
		ev.Event.Action = "exit"
		setKind(ev, "process", "end", ocsfProcessActivity, 2) // Terminate
		if b.status.Type == gjson.Number {
			code := b.status.Int()
			ev.Process.ExitCode = &code
		}
		ev.Message = b.signal
	case "process_kprobe", "process_lsm", "process_tracepoint", "process_uprobe":
		m.hook(e.kind, &b, ev)
	case "process_connect", "process_close", "process_listen":
		m.legacyNetwork(e.kind, &b, ev)
	case "process_loader":
		ev.Event.Action = "load"
		ev.File.Path = b.path
		setKind(ev, "library", "start", ocsfModuleActivity, 1) // Load
	case "process_throttle":
		ev.Event.Action = strings.ToLower(b.throttleType)
		ev.Message = b.cgroup
		setKind(ev, "host", "info", ocsfBaseEvent, ocsfActivityOther)
		ev.OCSF.CategoryUID = ocsfCategoryUncategory
	default: // a newer event type: keep what every event has
		ev.Event.Action = strings.TrimPrefix(e.kind, "process_")
		setKind(ev, "process", "info", ocsfProcessActivity, ocsfActivityOther)
	}
	if ev.OCSF.SeverityID == 0 {
		ev.OCSF.SeverityID = 1 // Informational: an observation, not a finding
	}
	ev.Event.ID = naturalID(execID, e.kind, e.time, e.body, &b)
	return nil
}

// naturalID is "tetragon-" and 128 bits of SHA-256 over exec_id, event type
// and time — what makes an event unique for a process — plus, for hooks,
// the hook and its arguments, so two hooks firing in one nanosecond stay two
// events. Without exec_id or time the Normalizer's content hash applies.
func naturalID(execID, kind, time string, raw gjson.Result, b *body) string {
	if execID == "" || time == "" {
		return ""
	}
	h := sha256.New()
	for _, s := range [...]string{execID, kind, time, b.functionName, b.subsys, b.event, b.symbol, b.args.Raw, b.ret.Raw, b.path} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	var sum [sha256.Size]byte
	var out [len(Source) + 1 + 32]byte
	n := copy(out[:], Source)
	out[n] = '-'
	hex.Encode(out[n+1:], h.Sum(sum[:0])[:16])
	return string(out[:])
}

func setKind(ev *schemas.Event, category, typ string, class, activity int32) {
	ev.Event.Category = append(ev.Event.Category, category)
	ev.Event.Type = append(ev.Event.Type, typ)
	ev.OCSF.ClassUID, ev.OCSF.ActivityID = class, activity
	ev.OCSF.CategoryUID = class / 1000
}
