package tetragon

import (
	"strconv"
	"strings"

	"github.com/tidwall/gjson"

	"github.com/crowsnest-siem/crowsnest/schemas"
)

// hookArgs is what a hook's arguments say, read in one walk.
type hookArgs struct {
	sock               gjson.Result // sock_arg, skb_arg
	sockaddr           gjson.Result
	filePath, filePerm string
	binprm             bool
	mask               int64 // the int_arg after a file: security_file_permission's MAY_*
	maskSet            bool
	module             string
	retSet             bool
	ret                int64
}

// hook maps kprobe, lsm, tracepoint and uprobe events by what their
// arguments carry: a socket makes a network event, a file a file event, a
// kernel-module hook a kernel extension event, anything else process
// activity. event.action is the hook (function, tracepoint subsys/event,
// uprobe symbol).
func (m *Mapper) hook(kind string, b *body, ev *schemas.Event) {
	fn := b.functionName
	switch kind {
	case "process_tracepoint":
		fn = b.event
		if b.subsys != "" {
			fn = b.subsys + "/" + b.event
		}
	case "process_uprobe":
		fn = b.symbol
		ev.File.Path = b.path
	}
	ev.Event.Action = fn

	var a hookArgs
	b.args.ForEach(func(_, arg gjson.Result) bool {
		arg.ForEach(func(k, v gjson.Result) bool {
			switch k.Str {
			case "sock_arg", "skb_arg":
				if !a.sock.Exists() {
					a.sock = v
				}
			case "sockaddr_arg":
				if !a.sockaddr.Exists() {
					a.sockaddr = v
				}
			case "file_arg", "path_arg", "linux_binprm_arg":
				if a.filePath == "" {
					a.filePath = v.Get("path").Str
					a.filePerm = v.Get("permission").Str
					a.binprm = k.Str == "linux_binprm_arg"
				}
			case "int_arg":
				if a.filePath != "" && !a.maskSet {
					a.mask, a.maskSet = v.Int(), true
				}
			case "module_arg":
				a.module = v.Get("name").Str
			}
			return true
		})
		return true
	})
	if r := b.ret.Get("int_arg"); r.Type == gjson.Number {
		a.retSet, a.ret = true, r.Int()
	}
	switch {
	case a.retSet && a.ret < 0:
		ev.Event.Outcome = "failure"
	case a.retSet:
		ev.Event.Outcome = "success"
	}

	switch {
	case a.sock.Exists() || a.sockaddr.Exists():
		m.hookNetwork(fn, &a, ev)
	case a.module != "" || isModuleHook(fn):
		ev.Event.Category = append(ev.Event.Category, "driver")
		switch {
		case strings.Contains(fn, "free_module") || strings.Contains(fn, "delete_module"):
			ev.Event.Type = append(ev.Event.Type, "end")
			ev.OCSF.ActivityID = 2 // Unload
		case strings.Contains(fn, "init_module") || strings.Contains(fn, "load_module"):
			ev.Event.Type = append(ev.Event.Type, "start")
			ev.OCSF.ActivityID = 1 // Load
		default:
			ev.Event.Type = append(ev.Event.Type, "info")
			ev.OCSF.ActivityID = ocsfActivityOther
		}
		ev.OCSF.ClassUID, ev.OCSF.CategoryUID = ocsfKernelExtension, ocsfCategorySystem
		ev.File.Path = a.filePath
	case a.binprm || strings.Contains(fn, "bprm"):
		ev.File.Path = a.filePath
		setKind(ev, "process", "start", ocsfProcessActivity, 1) // Launch
	case a.filePath != "":
		m.hookFile(fn, &a, ev)
	default:
		typ, activity := "info", int32(ocsfActivityOther)
		switch {
		case strings.Contains(fn, "setuid") || strings.Contains(fn, "setgid") || strings.Contains(fn, "setreuid") ||
			strings.Contains(fn, "setresuid") || strings.Contains(fn, "commit_creds") || strings.Contains(fn, "setfsuid"):
			typ, activity = "change", 5 // Set User ID
		case strings.Contains(fn, "ptrace") || strings.Contains(fn, "process_vm_writev"):
			typ, activity = "access", 4 // Inject
		case strings.Contains(fn, "capable") || strings.Contains(fn, "setns") || strings.Contains(fn, "unshare"):
			typ = "change"
		}
		setKind(ev, "process", typ, ocsfProcessActivity, activity)
	}
}

func isModuleHook(fn string) bool {
	return strings.Contains(fn, "module")
}

// hookNetwork maps a socket argument (KprobeSock, KprobeSkb or
// KprobeSockaddr) to source and destination.
func (m *Mapper) hookNetwork(fn string, a *hookArgs, ev *schemas.Event) {
	trunc := &ev.Crowsnest.Truncated
	var family, protocol string
	if a.sock.Exists() {
		a.sock.ForEach(func(k, v gjson.Result) bool {
			switch k.Str {
			case "family":
				family = v.Str
			case "protocol":
				protocol = v.Str
			case "saddr":
				ev.Source.IP = v.Str
			case "daddr":
				ev.Destination.IP = v.Str
			case "sport":
				ev.Source.Port = port(v.Int())
			case "dport":
				ev.Destination.Port = port(v.Int())
			}
			return true
		})
	} else {
		a.sockaddr.ForEach(func(k, v gjson.Result) bool {
			switch k.Str {
			case "family":
				family = v.Str
			case "addr":
				ev.Destination.IP = v.Str
			case "port":
				ev.Destination.Port = port(v.Int())
			}
			return true
		})
	}
	ev.Network.Transport = transport(protocol)
	switch family {
	case "AF_INET":
		ev.Network.Type = "ipv4"
	case "AF_INET6":
		ev.Network.Type = "ipv6"
	}
	ev.Related.IP = m.lim.AppendUnique(ev.Related.IP, ev.Source.IP, trunc)
	ev.Related.IP = m.lim.AppendUnique(ev.Related.IP, ev.Destination.IP, trunc)

	typ, activity := "connection", int32(ocsfActivityOther)
	switch {
	case strings.Contains(fn, "connect"):
		typ, activity = "start", 1 // Open
		ev.Network.Direction = "egress"
	case strings.Contains(fn, "accept"):
		typ, activity = "start", 1
		ev.Network.Direction = "ingress"
	case strings.Contains(fn, "close"):
		typ, activity = "end", 2 // Close
	case strings.Contains(fn, "listen") || strings.Contains(fn, "bind"):
		typ, activity = "start", 7 // Listen
		ev.Network.Direction = "listening"
	case strings.Contains(fn, "send") || strings.Contains(fn, "recv") || strings.Contains(fn, "xmit"):
		activity = 6 // Traffic
	}
	ev.Event.Category = append(ev.Event.Category, "network")
	ev.Event.Type = append(ev.Event.Type, "connection")
	if typ != "connection" {
		ev.Event.Type = append(ev.Event.Type, typ)
	}
	ev.OCSF.ClassUID, ev.OCSF.CategoryUID, ev.OCSF.ActivityID = ocsfNetworkActivity, ocsfCategoryNetwork, activity
}

// hookFile maps a file argument. The OCSF activity comes from the hook's
// name and, for permission hooks, the MAY_* mask that follows the file.
func (m *Mapper) hookFile(fn string, a *hookArgs, ev *schemas.Event) {
	f := &ev.File
	f.Path = a.filePath
	if i := strings.LastIndexByte(f.Path, '/'); i >= 0 {
		f.Directory, f.Name = f.Path[:max(i, 1)], f.Path[i+1:]
	} else {
		f.Name = f.Path
	}
	f.Mode = octalMode(a.filePerm)

	// security_file_permission(file, mask) and the file_permission LSM hook:
	// the int after the file is MAY_EXEC 1 | MAY_WRITE 2 | MAY_READ 4.
	const mayWrite, mayRead = 2, 4
	permission := a.maskSet && strings.Contains(fn, "permission")
	typ, activity := "access", int32(ocsfActivityOther)
	switch {
	case strings.Contains(fn, "unlink") || strings.Contains(fn, "rmdir"):
		typ, activity = "deletion", 4 // Delete
	case strings.Contains(fn, "rename"):
		typ, activity = "change", 5 // Rename
	case strings.Contains(fn, "chmod") || strings.Contains(fn, "chown") || strings.Contains(fn, "setattr") || strings.Contains(fn, "truncate"):
		typ, activity = "change", 6 // Set Attributes
	case strings.Contains(fn, "mkdir") || strings.Contains(fn, "mknod") || strings.Contains(fn, "symlink") ||
		strings.Contains(fn, "link") || strings.Contains(fn, "create"):
		typ, activity = "creation", 1 // Create
	case permission && a.mask&mayWrite != 0 || strings.Contains(fn, "write"):
		typ, activity = "change", 3 // Update
	case permission && a.mask&mayRead != 0 || strings.Contains(fn, "read"):
		typ, activity = "access", 2 // Read
	case strings.Contains(fn, "open") || fn == "fd_install":
		typ, activity = "access", 14 // Open
	}
	setKind(ev, "file", typ, ocsfFileActivity, activity)
}

// octalMode turns "-rw-r--r--" into "644"; anything else into "".
func octalMode(perm string) string {
	if len(perm) != 10 {
		return ""
	}
	var mode uint32
	for _, c := range perm[1:] {
		mode <<= 1
		switch c {
		case 'r', 'w', 'x', 's', 't':
			mode |= 1
		case '-', 'S', 'T':
		default:
			return ""
		}
	}
	return strconv.FormatUint(uint64(mode), 8)
}

// legacyNetwork maps the pre-1.0 process_connect, process_close and
// process_listen events, which carry the addresses as members.
func (m *Mapper) legacyNetwork(kind string, b *body, ev *schemas.Event) {
	trunc := &ev.Crowsnest.Truncated
	ev.Network.Transport = transport(b.protocol)
	typ, activity := "start", int32(1) // Open
	switch kind {
	case "process_connect":
		ev.Event.Action = "connect"
		ev.Network.Direction = "egress"
	case "process_close":
		ev.Event.Action = "close"
		typ, activity = "end", 2 // Close
	case "process_listen":
		ev.Event.Action = "listen"
		ev.Network.Direction = "listening"
		activity = 7 // Listen
	}
	if kind == "process_listen" {
		ev.Destination.IP, ev.Destination.Port = b.ip, port(b.port)
	} else {
		ev.Source.IP, ev.Source.Port = b.srcIP, port(b.srcPort)
		ev.Destination.IP, ev.Destination.Port = b.dstIP, port(b.dstPort)
	}
	ev.Related.IP = m.lim.AppendUnique(ev.Related.IP, ev.Source.IP, trunc)
	ev.Related.IP = m.lim.AppendUnique(ev.Related.IP, ev.Destination.IP, trunc)
	ev.Event.Category = append(ev.Event.Category, "network")
	ev.Event.Type = append(ev.Event.Type, "connection", typ)
	ev.OCSF.ClassUID, ev.OCSF.CategoryUID, ev.OCSF.ActivityID = ocsfNetworkActivity, ocsfCategoryNetwork, activity
}

// transport maps IPPROTO_TCP / TCP / tcp to ECS network.transport.
func transport(protocol string) string {
	switch strings.TrimPrefix(protocol, "IPPROTO_") {
	case "TCP", "tcp":
		return "tcp"
	case "UDP", "udp":
		return "udp"
	case "ICMP", "icmp":
		return "icmp"
	case "ICMPV6", "icmpv6":
		return "ipv6-icmp"
	case "SCTP", "sctp":
		return "sctp"
	}
	return ""
}

func port(v int64) int32 { return int32(max(0, min(v, 65535))) }
