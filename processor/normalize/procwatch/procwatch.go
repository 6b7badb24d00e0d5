package procwatch

import (
	"strconv"
	"strings"

	"github.com/tidwall/gjson"

	"github.com/crowsnest-siem/crowsnest/processor/normalize"
	"github.com/crowsnest-siem/crowsnest/processor/normalize/internal/naturalid"
	"github.com/crowsnest-siem/crowsnest/schemas"
)

// Source is the name this mapper is registered under.
const Source = "procwatch"

// format is the record format this mapper reads (FORMAT.md, "format 1").
const format = 1

var reasonNotProcwatch = normalize.NotSource(Source)

// OCSF classes and activities this mapper emits.
const (
	ocsfFileActivity    = 1001
	ocsfProcessActivity = 1007
	ocsfNetworkActivity = 4001
	ocsfBaseEvent       = 0
	ocsfOther           = 99
)

// Mapper maps procwatch records. It is stateless and safe for concurrent
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

// record is a record's top level, read in one walk.
type record struct {
	kind, time, seen, hostname, bootID    string
	format                                gjson.Result
	process, parent, file, local, remote  gjson.Result
	socket, collector, visibility, errors gjson.Result
	transport, netType, direction, reason string
}

// Map maps one procwatch record.
func (m *Mapper) Map(rec *normalize.Record, ev *schemas.Event) error {
	root := gjson.Parse(rec.Text())
	if !root.IsObject() {
		return normalize.Reject(reasonNotProcwatch, "a procwatch record is a JSON object, got %s", normalize.TypeName(root))
	}
	var r record
	root.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "kind":
			r.kind = v.Str
		case "format":
			r.format = v
		case "time":
			r.time = v.Str
		case "seen":
			r.seen = v.Str
		case "host":
			r.hostname, r.bootID = v.Get("hostname").Str, v.Get("boot_id").Str
		case "process":
			r.process = v
		case "parent":
			r.parent = v
		case "file":
			r.file = v
		case "local":
			r.local = v
		case "remote":
			r.remote = v
		case "socket":
			r.socket = v
		case "collector":
			r.collector = v
		case "visibility":
			r.visibility = v
		case "errors":
			r.errors = v
		case "transport":
			r.transport = v.Str
		case "type":
			r.netType = v.Str
		case "direction":
			r.direction = v.Str
		case "reason":
			r.reason = v.Str
		}
		return true
	})
	switch {
	case r.kind == "":
		return normalize.Reject(reasonNotProcwatch, "no kind: not a procwatch record")
	case r.format.Type != gjson.Number || r.format.Int() != format || r.format.Raw != strconv.Itoa(format):
		return normalize.Reject(reasonNotProcwatch, "record format %.16s, this mapper reads format %d", r.format.Raw, format)
	}
	ev.Event.Kind = "event"
	ev.Event.Provider = r.kind
	ev.Timestamp = normalize.ParseTime(r.time)
	m.host(&r, rec, ev)

	switch r.kind {
	case "process_exec":
		m.process(&r, r.process, ev)
		m.parent(r.parent, ev)
		ev.Event.Action = "exec"
		if r.seen == "startup" {
			// Already running when the collector started: seen, not started.
			setKind(ev, "process", "info", ocsfProcessActivity, ocsfOther)
		} else {
			setKind(ev, "process", "start", ocsfProcessActivity, 1) // Launch
		}
	case "process_exit":
		m.process(&r, r.process, ev)
		ev.Event.Action = "exit"
		setKind(ev, "process", "end", ocsfProcessActivity, 2) // Terminate
	case "network_listen", "network_connection":
		m.process(&r, r.process, ev)
		m.network(&r, ev)
	case "file_change":
		m.file(r.file, ev)
	case "capabilities":
		m.capabilities(&r, ev)
	default:
		return normalize.Reject(reasonNotProcwatch, "kind %.64q is not one of format %d's", r.kind, format)
	}
	ev.OCSF.SeverityID = 1 // Informational: an observation
	ev.Message = m.summary(&r, ev)
	return nil
}

func (m *Mapper) host(r *record, rec *normalize.Record, ev *schemas.Event) {
	ev.Host.Hostname = r.hostname
	// host.name is where it happened: the node or pod the collector runs
	// on, as it published; its own hostname otherwise.
	ev.Host.Name = rec.Node
	if ev.Host.Name == "" {
		ev.Host.Name = r.hostname
	}
	trunc := &ev.Crowsnest.Truncated
	ev.Related.Hosts = m.lim.AppendUnique(ev.Related.Hosts, ev.Host.Name, trunc)
	ev.Related.Hosts = m.lim.AppendUnique(ev.Related.Hosts, r.hostname, trunc)
}

// process maps the process a record is about. Its identity is the boot,
// the pid and the start time: process.entity_id is derived from them, so
// the exec, the exit and the sockets of one process join on it.
func (m *Mapper) process(r *record, v gjson.Result, ev *schemas.Event) {
	if !v.IsObject() {
		return
	}
	trunc := &ev.Crowsnest.Truncated
	p := &ev.Process
	var startTime, pid, uid string
	var argsTruncated bool
	v.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "pid":
			p.PID, pid = v.Int(), v.Raw
		case "ppid":
			p.PPID = v.Int()
		case "start_time":
			startTime = v.Str
		case "name":
			p.Name = v.Str
		case "exe":
			p.Executable = v.Str
		case "args":
			v.ForEach(func(_, a gjson.Result) bool {
				p.Args = m.lim.Append(p.Args, a.Str, trunc)
				return true
			})
		case "args_truncated":
			argsTruncated = v.Type == gjson.True
		case "cwd":
			p.WorkingDirectory = v.Str
		case "uid":
			if v.Type == gjson.Number {
				uid = v.Raw
			}
		case "gid":
			if v.Type == gjson.Number {
				p.Group.ID = v.Raw
			}
		case "euid":
			if v.Type == gjson.Number {
				ev.User.Effective.ID = v.Raw
			}
		case "container_id":
			ev.Container.ID = v.Str
		}
		return true
	})
	if argsTruncated {
		*trunc = true
	}
	p.Parent.PID = p.PPID
	p.Start = normalize.ParseTime(startTime)
	p.EntityID = naturalid.ID(Source, r.bootID, pid, startTime)
	if len(p.Args) > 0 {
		p.CommandLine = strings.Join(p.Args, " ")
	}
	if uid != "" {
		p.User.ID, ev.User.ID = uid, uid
		ev.Related.User = m.lim.AppendUnique(ev.Related.User, uid, trunc)
	}
}

func (m *Mapper) parent(v gjson.Result, ev *schemas.Event) {
	pp := &ev.Process.Parent
	v.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "pid":
			pp.PID = v.Int()
		case "name":
			pp.Name = v.Str
		case "exe":
			pp.Executable = v.Str
		}
		return true
	})
}

// network maps a listener or a connection. ECS source is the side that
// initiated: for an outbound connection the local end, for an inbound one
// the remote; a listener's own address is the destination connections come
// to (as Tetragon's listen events).
func (m *Mapper) network(r *record, ev *schemas.Event) {
	trunc := &ev.Crowsnest.Truncated
	n := &ev.Network
	switch r.transport {
	case "tcp", "udp":
		n.Transport = r.transport
	}
	switch r.netType {
	case "ipv4", "ipv6":
		n.Type = r.netType
	}
	localIP, localPort := endpoint(r.local)
	remoteIP, remotePort := endpoint(r.remote)
	if r.kind == "network_listen" {
		ev.Event.Action = "listen"
		n.Direction = "listening"
		ev.Destination.IP, ev.Destination.Port = localIP, localPort
		setKind(ev, "network", "connection", ocsfNetworkActivity, 7) // Listen
		ev.Event.Type = append(ev.Event.Type, "start")
	} else {
		if r.direction == "inbound" {
			ev.Event.Action = "accept"
			n.Direction = "ingress"
			ev.Source.IP, ev.Source.Port = remoteIP, remotePort
			ev.Destination.IP, ev.Destination.Port = localIP, localPort
		} else {
			ev.Event.Action = "connect"
			n.Direction = "egress"
			ev.Source.IP, ev.Source.Port = localIP, localPort
			ev.Destination.IP, ev.Destination.Port = remoteIP, remotePort
		}
		setKind(ev, "network", "connection", ocsfNetworkActivity, 1) // Open
		ev.Event.Type = append(ev.Event.Type, "start")
	}
	ev.Related.IP = m.lim.AppendUnique(ev.Related.IP, ev.Source.IP, trunc)
	ev.Related.IP = m.lim.AppendUnique(ev.Related.IP, ev.Destination.IP, trunc)
	// Without a process (another user's, unreadable without
	// CAP_SYS_PTRACE) the socket's owner is who acted.
	if uid := r.socket.Get("uid"); ev.User.ID == "" && uid.Type == gjson.Number {
		ev.User.ID = uid.Raw
		ev.Related.User = m.lim.AppendUnique(ev.Related.User, uid.Raw, trunc)
	}
}

func endpoint(v gjson.Result) (string, int32) {
	var ip string
	var port int64
	v.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "ip":
			ip = v.Str
		case "port":
			port = v.Int()
		}
		return true
	})
	if port < 0 || port > 65535 {
		port = 0
	}
	return ip, int32(port)
}

// file maps a watched file's change.
//
//	op      event.type  OCSF 1001 activity
//	create  creation    1 Create
//	write   change      3 Update
//	chmod   change      6 Set Attributes
//	remove  deletion    4 Delete
//	rename  change      5 Rename
func (m *Mapper) file(v gjson.Result, ev *schemas.Event) {
	trunc := &ev.Crowsnest.Truncated
	f := &ev.File
	var op, prev string
	v.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "path":
			f.Path = v.Str
		case "op":
			op = v.Str
		case "size":
			f.Size = v.Int()
		case "mode":
			f.Mode = v.Str
		case "sha256":
			f.Hash.SHA256 = v.Str
		case "previous_sha256":
			prev = v.Str
		}
		return true
	})
	if i := strings.LastIndexByte(f.Path, '/'); i >= 0 {
		f.Directory, f.Name = f.Path[:max(i, 1)], f.Path[i+1:]
	}
	ev.Related.Hash = m.lim.AppendUnique(ev.Related.Hash, f.Hash.SHA256, trunc)
	ev.Related.Hash = m.lim.AppendUnique(ev.Related.Hash, prev, trunc)
	typ, activity := "change", int32(ocsfOther)
	switch op {
	case "create":
		typ, activity = "creation", 1
	case "write":
		activity = 3
	case "chmod":
		activity = 6
	case "remove":
		typ, activity = "deletion", 4
	case "rename":
		activity = 5
	}
	ev.Event.Action = op
	setKind(ev, "file", typ, ocsfFileActivity, activity)
}

// capabilities maps the collector's report of what it can see: a state
// event about the host, not an activity (OCSF Base Event).
func (m *Mapper) capabilities(r *record, ev *schemas.Event) {
	ev.Event.Kind = "state"
	ev.Event.Action = "capabilities"
	ev.Event.Reason = r.reason
	p := &ev.Process
	r.collector.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "pid":
			p.PID = v.Int()
		case "uid":
			p.User.ID = v.Raw
		case "gid":
			p.Group.ID = v.Raw
		case "euid":
			ev.User.Effective.ID = v.Raw
		}
		return true
	})
	setKind(ev, "host", "info", ocsfBaseEvent, ocsfOther)
}

func setKind(ev *schemas.Event, category, typ string, class, activity int32) {
	ev.Event.Category = append(ev.Event.Category, category)
	ev.Event.Type = append(ev.Event.Type, typ)
	ev.OCSF.ClassUID, ev.OCSF.ActivityID = class, activity
	ev.OCSF.CategoryUID = class / 1000
}

// summary is one readable line; for a capabilities report it says what the
// collector can and cannot see, and for any record what it could not read
// (the record's errors), which no other field carries.
func (m *Mapper) summary(r *record, ev *schemas.Event) string {
	var b strings.Builder
	b.WriteString(r.kind)
	switch {
	case ev.Event.Action == "capabilities":
		vis := r.visibility
		b.WriteString(" (" + r.reason + "): exec detection " + vis.Get("exec_detection").Str + " every " + vis.Get("poll_interval").Str +
			", exe readable: " + vis.Get("exe_readable").Str + ", fd readable: " + vis.Get("fd_readable").Str)
		vis.Get("limitations").ForEach(func(_, l gjson.Result) bool {
			b.WriteString("; " + l.Str)
			return true
		})
	case ev.File.Path != "":
		b.WriteString(" " + ev.Event.Action + " " + ev.File.Path)
	case ev.Process.Executable != "" || ev.Process.Name != "":
		name := ev.Process.Executable
		if name == "" {
			name = ev.Process.Name
		}
		b.WriteString(" " + name)
		if ev.Destination.IP != "" {
			b.WriteString(" " + ev.Destination.IP + ":" + strconv.Itoa(int(ev.Destination.Port)))
		}
	case ev.Destination.IP != "":
		b.WriteString(" " + ev.Destination.IP + ":" + strconv.Itoa(int(ev.Destination.Port)))
	}
	first := true
	r.errors.ForEach(func(_, e gjson.Result) bool {
		if first {
			b.WriteString(" — could not read: ")
			first = false
		} else {
			b.WriteString(", ")
		}
		b.WriteString(e.Str)
		return true
	})
	return b.String()
}
