package auditd

import (
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/elastic/go-libaudit/v2/aucoalesce"
	"github.com/elastic/go-libaudit/v2/auparse"

	"github.com/crowsnest-siem/crowsnest/processor/normalize"
	"github.com/crowsnest-siem/crowsnest/processor/normalize/internal/naturalid"
	"github.com/crowsnest-siem/crowsnest/schemas"
)

// Source is the name this mapper is registered under.
const Source = "auditd"

var reasonNotAuditd = normalize.NotSource(Source)

// maxRecords bounds the lines of one event: a real one has a SYSCALL, a few
// PATHs and an EXECVE split over a few lines; go-libaudit's reassembler
// caps an event far lower than what a record size allows.
const maxRecords = 256

// Mapper maps grouped auditd events. It is stateless and safe for
// concurrent use.
type Mapper struct {
	lim normalize.Limits
}

var _ normalize.Mapper = (*Mapper)(nil)

// New returns a Mapper bounded by cfg's limits.
func New(cfg normalize.Config) *Mapper { return &Mapper{lim: cfg.Limits()} }

// NewFactory registers the mapper under [Source]; its records are text.
func NewFactory() normalize.Factory {
	return normalize.Factory{
		Source: Source,
		Format: normalize.FormatText,
		New:    func(cfg normalize.Config) (normalize.Mapper, error) { return New(cfg), nil },
	}
}

// header is what identifies the event, from its first record.
type header struct {
	node   string // auditd's name_format prefix, "" without one
	stamp  string // "1700000000.100", as written
	serial string
}

// Map maps one auditd event: its records, one per line.
func (m *Mapper) Map(rec *normalize.Record, ev *schemas.Event) error {
	var (
		stack [16]*auparse.AuditMessage
		msgs  = stack[:0]
		h     header
		names names
	)
	text := rec.Text()
	for n := 1; text != ""; n++ {
		var line string
		line, text, _ = strings.Cut(text, "\n")
		line = strings.TrimRight(line, "\r ")
		if line == "" {
			continue
		}
		if len(msgs) == maxRecords {
			return normalize.Reject(reasonNotAuditd, "more than %d records in one event", maxRecords)
		}
		node, body := cutNode(line)
		msg, err := auparse.ParseLogLine(body)
		if err != nil {
			return normalize.Reject(reasonNotAuditd, "line %d is not an audit record: %w", n, err)
		}
		stamp, serial, ok := stampOf(body)
		if !ok {
			return normalize.Reject(reasonNotAuditd, "line %d: unreadable audit(time:serial) header", n)
		}
		if len(msgs) == 0 {
			h = header{node: node, stamp: stamp, serial: serial}
		} else if stamp != h.stamp || serial != h.serial || node != h.node {
			// collectors/auditd publishes one event per record; lines of two
			// events together are not something it sends.
			return normalize.Reject(reasonNotAuditd, "line %d belongs to another event (audit(%.32s:%.16s), not audit(%s:%s))", n, stamp, serial, h.stamp, h.serial)
		}
		msgs = append(msgs, msg)
		names.read(body)
	}
	if len(msgs) == 0 {
		return normalize.Reject(reasonNotAuditd, "no audit record")
	}
	if len(msgs) == 1 && msgs[0].RecordType == auparse.AUDIT_EOE {
		return normalize.Reject(reasonNotAuditd, "a lone end-of-event record carries no event")
	}
	ae, err := aucoalesce.CoalesceMessages(msgs)
	if err != nil {
		// A compound event without its SYSCALL record (auditd lost it).
		return normalize.Reject(normalize.ReasonMissingField, "audit event %s:%s: %w", h.stamp, h.serial, err)
	}

	node := h.node
	if node == "" {
		node = rec.Node // auditd writes no node name by default: the collector's host
	}
	m.fill(ae, node, &names, ev)
	m.records(ae, msgs, ev)
	ev.Event.ID = naturalid.ID(Source, node, h.stamp, h.serial)
	return nil
}

// records keeps what the coalesced event's ECS fields do not carry but
// Sigma's auditd rules, written against single records, test: which record
// types made the event (a rule on `type: EXECVE` must match the execve event
// go-libaudit named after its SYSCALL record), the records' own fields and
// ids (syscall name, unit, euid, …) and each PATH record's name and nametype.
func (m *Mapper) records(ae *aucoalesce.Event, msgs []*auparse.AuditMessage, ev *schemas.Event) {
	trunc := &ev.Crowsnest.Truncated
	a := &ev.Auditd
	for _, msg := range msgs {
		if msg.RecordType != auparse.AUDIT_EOE {
			a.RecordTypes = m.lim.AppendUnique(a.RecordTypes, msg.RecordType.String(), trunc)
		}
	}
	for _, src := range [...]map[string]string{ae.Data, ae.User.IDs} {
		if len(a.Data)+len(src) <= m.lim.MaxEntries {
			for k, v := range src {
				if v != "" {
					a.Data = m.lim.Put(a.Data, k, v, trunc)
				}
			}
			continue
		}
		// Sorted when some keys must go, so that which ones a truncation
		// keeps does not depend on map order: the same record always maps
		// to the same event. Only then: sorting costs allocations per event.
		for _, k := range slices.Sorted(maps.Keys(src)) {
			if v := src[k]; v != "" {
				a.Data = m.lim.Put(a.Data, k, v, trunc)
			}
		}
	}
	for _, p := range ae.Paths {
		if len(a.Paths.Name) == m.lim.MaxEntries {
			*trunc = true
			break
		}
		// Appended in pairs, so the two lists stay aligned.
		a.Paths.Name = append(a.Paths.Name, p["name"])
		a.Paths.Nametype = append(a.Paths.Nametype, p["nametype"])
	}
}

// cutNode splits auditd's "node=<name> " prefix (name_format) off a line.
func cutNode(line string) (node, rest string) {
	if !strings.HasPrefix(line, "node=") {
		return "", line
	}
	node, rest, ok := strings.Cut(line[len("node="):], " ")
	if !ok {
		return "", line
	}
	return node, rest
}

// stampOf returns the time and serial of "... msg=audit(<time>:<serial>): ...",
// as written, which auparse has already validated.
func stampOf(line string) (stamp, serial string, ok bool) {
	i := strings.Index(line, "audit(")
	if i < 0 {
		return "", "", false
	}
	rest := line[i+len("audit("):]
	end := strings.IndexByte(rest, ')')
	if end < 0 {
		return "", "", false
	}
	return strings.Cut(rest[:end], ":")
}

// fill maps go-libaudit's coalesced event: its ECS block (categorization,
// the users of logins and account changes) and the process, file and
// network parts Auditbeat maps from it.
func (m *Mapper) fill(ae *aucoalesce.Event, node string, names *names, ev *schemas.Event) {
	trunc := &ev.Crowsnest.Truncated
	ev.Timestamp = ae.Timestamp.UTC()
	ev.Event.Kind = ae.ECS.Event.Kind
	if ev.Event.Kind == "" {
		ev.Event.Kind = "event"
	}
	for _, c := range ae.ECS.Event.Category {
		ev.Event.Category = m.lim.AppendUnique(ev.Event.Category, c, trunc)
	}
	for _, t := range ae.ECS.Event.Type {
		ev.Event.Type = m.lim.AppendUnique(ev.Event.Type, t, trunc)
	}
	ev.Event.Outcome = outcome(ae)
	ev.Event.Action = ae.Summary.Action
	ev.Event.Provider = ae.Type.String()
	for _, k := range ae.Tags {
		ev.Tags = m.lim.AppendUnique(ev.Tags, k, trunc)
	}
	if node != "" {
		ev.Host.Name = node
		ev.Related.Hosts = m.lim.AppendUnique(ev.Related.Hosts, node, trunc)
	}

	m.process(ae, ev)
	m.users(ae, names, ev)
	if f := ae.File; f != nil {
		ev.File.Path = f.Path
		ev.File.Mode = f.Mode
		if i := strings.LastIndexByte(f.Path, '/'); i >= 0 {
			ev.File.Directory, ev.File.Name = f.Path[:max(i, 1)], f.Path[i+1:]
		}
	}
	if a := ae.Source; a != nil {
		ev.Source.IP, ev.Source.Port = a.IP, port(a.Port)
		ev.Related.IP = m.lim.AppendUnique(ev.Related.IP, a.IP, trunc)
	}
	if a := ae.Dest; a != nil {
		ev.Destination.IP, ev.Destination.Port = a.IP, port(a.Port)
		ev.Related.IP = m.lim.AppendUnique(ev.Related.IP, a.IP, trunc)
	}
	if ae.Net != nil {
		switch ae.Net.Direction {
		case aucoalesce.IncomingDir, aucoalesce.OutgoingDir:
			ev.Network.Direction = ae.Net.Direction.String()
		}
	}
	if fam := ae.Data["socket_family"]; fam == "ipv4" || fam == "ipv6" {
		ev.Network.Type = fam
	}
	ev.Message = summary(ae)
	classify(ae, ev)
}

func (m *Mapper) process(ae *aucoalesce.Event, ev *schemas.Event) {
	trunc := &ev.Crowsnest.Truncated
	p := &ev.Process
	ap := &ae.Process
	p.PID, _ = strconv.ParseInt(ap.PID, 10, 64)
	p.PPID, _ = strconv.ParseInt(ap.PPID, 10, 64)
	p.Parent.PID = p.PPID
	p.Name, p.Executable, p.WorkingDirectory = ap.Name, ap.Exe, ap.CWD
	for _, a := range ap.Args {
		p.Args = m.lim.Append(p.Args, a, trunc)
	}
	switch {
	case len(ap.Args) > 0:
		p.CommandLine = strings.Join(ap.Args, " ")
	default:
		p.CommandLine = ap.Title // PROCTITLE, decoded
	}
	if tty, ok := ae.Data["tty"]; ok {
		has := tty != "(none)"
		p.TTY = &has
	}
	ids := ae.User.IDs
	p.User.ID = ids["uid"]
	p.Group.ID = ids["gid"]
}

// users maps who acted and on whom. go-libaudit's ECS block names them for
// logins, sessions and account changes; for a syscall it is empty, and the
// actor is the login user (auid) behind the process, or the process's uid
// when the process has no login user (a daemon).
func (m *Mapper) users(ae *aucoalesce.Event, names *names, ev *schemas.Event) {
	trunc := &ev.Crowsnest.Truncated
	u := &ae.ECS.User
	ev.User.ID, ev.User.Name = u.ID, u.Name
	if ev.User.ID == "" && ev.User.Name == "" {
		ev.User.ID, ev.User.Name = ae.User.IDs["auid"], names.auid
		if ev.User.ID == "" || ev.User.ID == "unset" {
			ev.User.ID, ev.User.Name = ae.User.IDs["uid"], names.uid
		}
	}
	ev.Process.User.Name = names.uid
	ev.User.Effective.ID, ev.User.Effective.Name = u.Effective.ID, u.Effective.Name
	ev.User.Target.ID, ev.User.Target.Name = u.Target.ID, u.Target.Name
	ev.Group.ID, ev.Group.Name = ae.ECS.Group.ID, ae.ECS.Group.Name
	for _, s := range [...]string{ev.User.Name, ev.User.ID, names.uid, u.Effective.Name, u.Effective.ID, u.Target.Name, u.Target.ID} {
		if s != "unset" {
			ev.Related.User = m.lim.AppendUnique(ev.Related.User, s, trunc)
		}
	}
}

// outcome: go-libaudit's ECS outcome when it set one, else the record's
// result (success, fail; unknown when it has none).
func outcome(ae *aucoalesce.Event) string {
	if ae.ECS.Event.Outcome != "" {
		return ae.ECS.Event.Outcome
	}
	switch ae.Result {
	case "success":
		return "success"
	case "fail":
		return "failure"
	}
	return "unknown"
}

// summary reads like auditd's own: "<actor> <action> <object>", with the
// record type and the login user, which no other field carries for a
// syscall.
func summary(ae *aucoalesce.Event) string {
	var b strings.Builder
	b.WriteString(ae.Type.String())
	for _, s := range [...]string{ae.Summary.Actor.Primary, ae.Summary.Action, ae.Summary.Object.Type, ae.Summary.Object.Primary} {
		if s != "" {
			b.WriteByte(' ')
			b.WriteString(s)
		}
	}
	return b.String()
}

func port(s string) int32 {
	p, err := strconv.ParseUint(s, 10, 16)
	if err != nil {
		return 0
	}
	return int32(p)
}

// names are the user names auditd's ENRICHED log format appends to a
// record after a 0x1d byte (AUID="dave" UID="root"): resolved on the
// audited host, where they are true, unlike a lookup here.
type names struct{ auid, uid string }

// read takes the first AUID and UID names of a record's enriched part.
func (n *names) read(line string) {
	i := strings.IndexByte(line, 0x1d)
	if i < 0 {
		return
	}
	for f := range strings.FieldsSeq(line[i+1:]) {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			continue
		}
		v = strings.Trim(v, `"`)
		switch {
		case k == "AUID" && n.auid == "" && v != "unset":
			n.auid = v
		case k == "UID" && n.uid == "":
			n.uid = v
		}
	}
}
