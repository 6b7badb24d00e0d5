package falco

import (
	"strings"
	"time"

	"github.com/tidwall/gjson"

	"github.com/crowsnest-siem/crowsnest/processor/normalize"
	"github.com/crowsnest-siem/crowsnest/schemas"
)

// Source is the name this mapper is registered under.
const Source = "falco"

var reasonNotFalco = normalize.NotSource(Source)

// OCSF Detection Finding (class 2004, category 2 Findings), activity 1 Create.
const (
	ocsfClassDetectionFinding = 2004
	ocsfCategoryFindings      = 2
	ocsfActivityCreate        = 1
)

// Mapper maps Falco alerts. It is stateless and safe for concurrent use.
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

// alert is the alert's top level, read in one walk.
type alert struct {
	uuid, output, priority, rule, time, source, hostname string
	outputFields, tags                                   gjson.Result
	hasRule                                              bool
}

// fields is what the mapper reads from output_fields, in one walk.
type fields struct {
	evtTime                                  time.Time
	evtType, evtRes                          string
	evtFailed                                triBool
	fdName, fdDir, fdFile, fdType, fdL4      string
	cip, sip, lip, rip                       string
	cport, sport, lport, rport               int64
	sipName, ripName                         string
	procExepath, procExe, procArgs, procName string
	hasArgs                                  bool
	imageName, imageRepo, imageTag           string
	imageDigest                              gjson.Result
	k8s                                      bool
}

type triBool struct{ set, val bool }

// Map maps one Falco alert.
func (m *Mapper) Map(rec *normalize.Record, ev *schemas.Event) error {
	root := gjson.Parse(rec.Text())
	if !root.IsObject() {
		return normalize.Reject(reasonNotFalco, "a Falco alert is a JSON object, got %s", normalize.TypeName(root))
	}
	var a alert
	root.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "uuid":
			a.uuid = v.Str
		case "output":
			a.output = v.Str
		case "priority":
			a.priority = v.Str
		case "rule":
			a.rule, a.hasRule = v.Str, v.Type == gjson.String
		case "time":
			a.time = v.Str
		case "source":
			a.source = v.Str
		case "hostname":
			a.hostname = v.Str
		case "output_fields":
			a.outputFields = v
		case "tags":
			a.tags = v
		}
		return true
	})
	if !a.hasRule || a.rule == "" {
		return normalize.Reject(reasonNotFalco, "no rule: not a Falco alert")
	}
	if a.priority == "" && a.output == "" && !a.outputFields.IsObject() {
		return normalize.Reject(reasonNotFalco, "rule without priority, output or output_fields: not a Falco alert")
	}
	trunc := &ev.Crowsnest.Truncated

	ev.Event.ID = a.uuid // empty: the Normalizer hashes the content
	ev.Event.Kind = "alert"
	ev.Event.Action = a.rule
	ev.Event.Provider = a.source
	ev.Message = a.output
	ev.Rule.ID, ev.Rule.Name = a.rule, a.rule
	a.tags.ForEach(func(_, v gjson.Result) bool {
		ev.Tags = m.lim.AppendUnique(ev.Tags, v.Str, trunc)
		return true
	})
	ev.Event.Severity, ev.OCSF.SeverityID = severity(a.priority)
	ev.OCSF.ClassUID, ev.OCSF.CategoryUID, ev.OCSF.ActivityID = ocsfClassDetectionFinding, ocsfCategoryFindings, ocsfActivityCreate

	fa := &ev.Falco
	fa.Rule, fa.Priority, fa.Source, fa.Hostname, fa.Output = a.rule, a.priority, a.source, a.hostname, a.output
	if a.hostname != "" {
		ev.Host.Name, ev.Host.Hostname = a.hostname, a.hostname
		ev.Related.Hosts = m.lim.AppendUnique(ev.Related.Hosts, a.hostname, trunc)
	}

	var f fields
	a.outputFields.ForEach(func(k, v gjson.Result) bool {
		m.field(k.Str, v, &f, ev)
		return true
	})

	ev.Timestamp = f.evtTime
	if ev.Timestamp.IsZero() {
		ev.Timestamp = normalize.ParseTime(a.time)
	}
	m.process(&f, ev)
	m.file(&f, ev)
	m.network(&f, ev)
	m.container(&f, ev)
	if f.k8s {
		ev.Orchestrator.Type = "kubernetes"
		if ev.Orchestrator.Resource.Name != "" && ev.Orchestrator.Resource.Type == "" {
			ev.Orchestrator.Resource.Type = "pods"
		}
	}
	switch {
	case f.evtFailed.set && f.evtFailed.val && f.evtRes != "EINPROGRESS":
		ev.Event.Outcome = "failure"
	case f.evtRes == "SUCCESS" || f.evtRes == "EINPROGRESS": // a non-blocking connect under way
		ev.Event.Outcome = "success"
	case f.evtRes != "":
		ev.Event.Outcome = "failure" // an errno name: ENOENT, EACCES, …
	case f.evtFailed.set:
		ev.Event.Outcome = "success"
	}
	categorize(ev, a.source, f.evtType, ev.File.Path != "", ev.Destination.IP != "" || ev.Source.IP != "")
	return nil
}

// field maps one output field and keeps it in falco.output_fields.
func (m *Mapper) field(key string, v gjson.Result, f *fields, ev *schemas.Event) {
	trunc := &ev.Crowsnest.Truncated
	s := v.Str
	if v.Type != gjson.String {
		s = v.Raw // numbers, booleans and lists keep their JSON text
	}
	if v.Type != gjson.Null {
		ev.Falco.OutputFields = m.lim.Put(ev.Falco.OutputFields, key, s, trunc)
	}
	p := &ev.Process
	switch key {
	// event
	case "evt.time", "evt.time.iso8601", "evt.rawtime":
		if t := eventTime(v); !t.IsZero() && f.evtTime.IsZero() {
			f.evtTime = t
		}
	case "evt.type":
		f.evtType = s
	case "evt.res":
		f.evtRes = s
	case "evt.failed":
		f.evtFailed = triBool{v.Type == gjson.True || v.Type == gjson.False, v.Type == gjson.True}
	// process
	case "proc.pid":
		p.PID = v.Int()
	case "proc.ppid":
		p.PPID, p.Parent.PID = v.Int(), v.Int()
	case "proc.name":
		f.procName = s
	case "proc.exepath":
		f.procExepath = s
	case "proc.exe":
		f.procExe = s
	case "proc.cmdline":
		p.CommandLine = s
	case "proc.args":
		f.procArgs, f.hasArgs = s, v.Type == gjson.String
	case "proc.cwd":
		p.WorkingDirectory = s
	case "proc.tty":
		if v.Type == gjson.Number {
			tty := v.Int() != 0
			p.TTY = &tty
		}
	case "proc.pid.ts":
		p.Start = nsTime(v)
	case "proc.pname":
		p.Parent.Name = s
	case "proc.pexepath":
		p.Parent.Executable = s
	case "proc.pexe":
		if p.Parent.Executable == "" && strings.HasPrefix(s, "/") {
			p.Parent.Executable = s
		}
	case "proc.pcmdline":
		p.Parent.CommandLine = s
	// user
	case "user.name":
		p.User.Name, ev.User.Name = s, s
		ev.Related.User = m.lim.AppendUnique(ev.Related.User, s, trunc)
	case "user.uid":
		p.User.ID, ev.User.ID = s, s
	case "group.gid":
		p.Group.ID = s
	// file and network
	case "fd.name":
		f.fdName = s
	case "fd.directory":
		f.fdDir = s
	case "fd.filename":
		f.fdFile = s
	case "fd.type":
		f.fdType = s
	case "fd.l4proto":
		f.fdL4 = s
	case "fd.cip":
		f.cip = s
	case "fd.sip":
		f.sip = s
	case "fd.lip":
		f.lip = s
	case "fd.rip":
		f.rip = s
	case "fd.cport":
		f.cport = v.Int()
	case "fd.sport":
		f.sport = v.Int()
	case "fd.lport":
		f.lport = v.Int()
	case "fd.rport":
		f.rport = v.Int()
	case "fd.sip.name":
		f.sipName = s
	case "fd.rip.name":
		f.ripName = s
	// container
	case "container.id":
		ev.Container.ID = s
	case "container.name":
		ev.Container.Name = s
	case "container.type":
		ev.Container.Runtime = s
	case "container.privileged":
		if v.Type == gjson.True || v.Type == gjson.False {
			priv := v.Type == gjson.True
			ev.Container.SecurityContext.Privileged = &priv
		}
	case "container.image":
		f.imageName = s
	case "container.image.repository":
		f.imageRepo = s
	case "container.image.tag":
		f.imageTag = s
	case "container.image.digest":
		f.imageDigest = v
	// Kubernetes metadata of the syscall source
	case "k8s.ns.name":
		ev.Orchestrator.Namespace, f.k8s = s, true
	case "k8s.pod.name":
		ev.Orchestrator.Resource.Name, f.k8s = s, true
	case "k8s.pod.labels":
		f.k8s = true
		m.labels(v, ev)
	// the k8s_audit plugin
	case "ka.target.namespace":
		ev.Orchestrator.Namespace, f.k8s = s, true
	case "ka.target.resource":
		ev.Orchestrator.Resource.Type, f.k8s = s, true
	case "ka.target.name":
		ev.Orchestrator.Resource.Name, f.k8s = s, true
	case "ka.user.name":
		ev.User.Name = s
		ev.Related.User = m.lim.AppendUnique(ev.Related.User, s, trunc)
	case "ka.uri":
		ev.URL.Original = s
	case "ka.useragent":
		ev.UserAgent.Original = s
	}
}

// labels reads k8s.pod.labels, a list of "key:value" (or Falco's string
// form "[key:value, key:value]") into orchestrator.resource.label as
// "key=value".
func (m *Mapper) labels(v gjson.Result, ev *schemas.Event) {
	trunc := &ev.Crowsnest.Truncated
	add := func(kv string) {
		kv = strings.TrimSpace(kv)
		if kv == "" {
			return
		}
		if k, val, ok := strings.Cut(kv, ":"); ok {
			kv = k + "=" + val
		}
		ev.Orchestrator.Resource.Label = m.lim.Append(ev.Orchestrator.Resource.Label, kv, trunc)
	}
	if v.IsArray() {
		v.ForEach(func(_, x gjson.Result) bool {
			add(x.Str)
			return true
		})
		return
	}
	s := strings.TrimSuffix(strings.TrimPrefix(v.Str, "["), "]")
	for s != "" {
		var kv string
		kv, s, _ = strings.Cut(s, ",")
		add(kv)
	}
}

func (m *Mapper) process(f *fields, ev *schemas.Event) {
	trunc := &ev.Crowsnest.Truncated
	p := &ev.Process
	p.Name = f.procName
	p.Executable = f.procExepath
	if p.Executable == "" && strings.HasPrefix(f.procExe, "/") {
		p.Executable = f.procExe
	}
	if f.hasArgs {
		argv0 := p.Executable
		if argv0 == "" {
			argv0 = f.procName
		}
		p.Args = m.lim.Append(p.Args, argv0, trunc)
		for _, arg := range strings.Fields(f.procArgs) {
			p.Args = m.lim.Append(p.Args, arg, trunc)
		}
	}
	if p.Name == "" && p.Executable != "" {
		p.Name = p.Executable[strings.LastIndexByte(p.Executable, '/')+1:]
	}
}

// file maps fd.name when it names a file (not a socket or pipe).
func (m *Mapper) file(f *fields, ev *schemas.Event) {
	fl := &ev.File
	if strings.HasPrefix(f.fdName, "/") && (f.fdType == "" || f.fdType == "file" || f.fdType == "directory") {
		fl.Path = f.fdName
		i := strings.LastIndexByte(f.fdName, '/')
		fl.Directory, fl.Name = f.fdName[:max(i, 1)], f.fdName[i+1:]
	}
	if f.fdDir != "" {
		fl.Directory = f.fdDir
	}
	if f.fdFile != "" {
		fl.Name = f.fdFile
	}
}

// network: the client is the source, the server the destination (ECS:
// source is the side that initiated). Without client/server fields the local
// side is the source, unless the syscall accepted the connection.
func (m *Mapper) network(f *fields, ev *schemas.Event) {
	trunc := &ev.Crowsnest.Truncated
	srcIP, srcPort, dstIP, dstPort := f.cip, f.cport, f.sip, f.sport
	if srcIP == "" && dstIP == "" {
		srcIP, srcPort, dstIP, dstPort = f.lip, f.lport, f.rip, f.rport
		if isAccept(f.evtType) {
			srcIP, srcPort, dstIP, dstPort = dstIP, dstPort, srcIP, srcPort
		}
	}
	ev.Source.IP, ev.Source.Port = srcIP, int32(clamp(srcPort, 0, 65535))
	ev.Destination.IP, ev.Destination.Port = dstIP, int32(clamp(dstPort, 0, 65535))
	ev.Destination.Domain = f.sipName
	if ev.Destination.Domain == "" && f.sip == "" {
		ev.Destination.Domain = f.ripName
	}
	ev.Related.IP = m.lim.AppendUnique(ev.Related.IP, srcIP, trunc)
	ev.Related.IP = m.lim.AppendUnique(ev.Related.IP, dstIP, trunc)
	if srcIP == "" && dstIP == "" {
		return
	}
	switch f.fdL4 {
	case "tcp", "udp":
		ev.Network.Transport = f.fdL4
	}
	switch f.fdType {
	case "ipv4", "ipv6":
		ev.Network.Type = f.fdType
	}
	switch {
	case isAccept(f.evtType):
		ev.Network.Direction = "ingress"
	case f.evtType == "connect" || f.evtType == "sendto" || f.evtType == "sendmsg":
		ev.Network.Direction = "egress"
	case f.evtType == "listen":
		ev.Network.Direction = "listening"
	}
}

func (m *Mapper) container(f *fields, ev *schemas.Event) {
	trunc := &ev.Crowsnest.Truncated
	c := &ev.Container
	if c.ID == "host" { // Falco's name for "not in a container"
		c.ID, c.Name = "", ""
		return
	}
	c.Image.Name = f.imageName
	if c.Image.Name == "" {
		c.Image.Name = f.imageRepo // Falco's default rules print the repository and tag apart
	}
	if f.imageTag != "" {
		c.Image.Tag = m.lim.Append(c.Image.Tag, f.imageTag, trunc)
	}
	if f.imageDigest.IsArray() {
		f.imageDigest.ForEach(func(_, d gjson.Result) bool {
			c.Image.Hash.All = m.lim.AppendUnique(c.Image.Hash.All, d.Str, trunc)
			return true
		})
	} else if d := f.imageDigest.Str; d != "" {
		c.Image.Hash.All = m.lim.Append(c.Image.Hash.All, d, trunc)
	}
}

func isAccept(evtType string) bool { return evtType == "accept" || evtType == "accept4" }

// eventTime reads evt.time and friends: nanoseconds since the epoch as a
// number (Falco's JSON output) or an RFC 3339 string.
func eventTime(v gjson.Result) time.Time {
	switch v.Type {
	case gjson.Number:
		return nsTime(v)
	case gjson.String:
		return normalize.ParseTime(v.Str)
	}
	return time.Time{}
}

// nsTime reads nanoseconds since the epoch; values before 2000 are not real
// times (test data, uninitialized fields) and yield zero.
func nsTime(v gjson.Result) time.Time {
	const y2000 = 946684800 * int64(time.Second)
	var ns int64
	switch v.Type {
	case gjson.Number:
		ns = v.Int()
	case gjson.String:
		ns = gjson.Parse(v.Str).Int()
	}
	if ns < y2000 {
		return time.Time{}
	}
	return time.Unix(0, ns).UTC()
}

// severity maps a Falco priority (case-insensitive) to event.severity (ECS
// practice on a 0–100 scale) and the OCSF severity_id.
//
//	priority                        event.severity  ocsf.severity_id
//	Emergency, Alert, Critical      99              5 Critical
//	Error                           73              4 High
//	Warning                         47              3 Medium
//	Notice                          21              2 Low
//	Informational (Info)            10              1 Informational
//	Debug                           1               1 Informational
//	missing or unknown              0 (unset)       0 Unknown
func severity(priority string) (int64, int32) {
	switch {
	case strings.EqualFold(priority, "Emergency"), strings.EqualFold(priority, "Alert"), strings.EqualFold(priority, "Critical"):
		return 99, 5
	case strings.EqualFold(priority, "Error"):
		return 73, 4
	case strings.EqualFold(priority, "Warning"):
		return 47, 3
	case strings.EqualFold(priority, "Notice"):
		return 21, 2
	case strings.EqualFold(priority, "Informational"), strings.EqualFold(priority, "Info"):
		return 10, 1
	case strings.EqualFold(priority, "Debug"):
		return 1, 1
	}
	return 0, 0
}

// categorize sets the ECS category and type from what the alert is about:
// the syscall for the syscall source, the source otherwise.
//
//	evt.type                                     category  type
//	execve, execveat, clone, fork, vfork         process   start
//	open, openat, openat2, open_by_handle_at     file      access
//	creat, mkdir, mkdirat, symlink*, link*       file      creation
//	unlink, unlinkat, rmdir                      file      deletion
//	rename*, chmod*, fchmod*, chown*, …          file      change
//	connect, accept*, sendto, sendmsg, listen    network   connection
//	setuid, setgid, setres*id, capset, ptrace    process   change
//	anything else: file access when fd.name is a path, network connection
//	when there are addresses, else process info
//	source k8s_audit / k8saudit                  configuration  info
//	other plugin sources (cloudtrail, okta, …)   host      info
func categorize(ev *schemas.Event, source, evtType string, hasFile, hasAddr bool) {
	cat, typ := "process", "info"
	switch {
	case source == "k8s_audit" || source == "k8saudit" || source == "k8saudit-eks" || source == "k8saudit-gke" || source == "k8saudit-aks":
		cat, typ = "configuration", "info"
	case source != "" && source != "syscall":
		cat, typ = "host", "info"
	default:
		switch evtType {
		case "execve", "execveat", "clone", "clone3", "fork", "vfork":
			cat, typ = "process", "start"
		case "open", "openat", "openat2", "open_by_handle_at":
			cat, typ = "file", "access"
		case "creat", "mkdir", "mkdirat", "symlink", "symlinkat", "link", "linkat":
			cat, typ = "file", "creation"
		case "unlink", "unlinkat", "rmdir":
			cat, typ = "file", "deletion"
		case "rename", "renameat", "renameat2", "chmod", "fchmod", "fchmodat", "chown", "fchown", "fchownat", "lchown", "truncate", "ftruncate":
			cat, typ = "file", "change"
		case "connect", "accept", "accept4", "sendto", "sendmsg", "recvfrom", "recvmsg", "listen", "bind":
			cat, typ = "network", "connection"
		case "setuid", "setgid", "setresuid", "setresgid", "setreuid", "setregid", "capset", "ptrace":
			cat, typ = "process", "change"
		default:
			switch {
			case hasFile:
				cat, typ = "file", "access"
			case hasAddr:
				cat, typ = "network", "connection"
			}
		}
	}
	ev.Event.Category = append(ev.Event.Category, cat)
	ev.Event.Type = append(ev.Event.Type, typ)
}

func clamp(v, lo, hi int64) int64 { return max(lo, min(v, hi)) }
