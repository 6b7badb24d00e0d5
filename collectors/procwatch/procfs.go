package procwatch

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"net/netip"
	"strconv"
)

// statInfo is what the collector reads from /proc/<pid>/stat.
type statInfo struct {
	comm  string
	state byte
	ppid  int
	// start is the process start time in clock ticks after boot.
	start uint64
}

var errMalformed = errors.New("malformed")

// parseStat parses /proc/<pid>/stat. The command name sits in parentheses
// and may itself hold spaces and parentheses, so the fields after it are
// found from the last ')'.
func parseStat(b []byte) (statInfo, error) {
	var s statInfo
	open := bytes.IndexByte(b, '(')
	closing := bytes.LastIndexByte(b, ')')
	if open < 0 || closing < open {
		return s, errMalformed
	}
	s.comm = string(b[open+1 : closing])
	rest := bytes.Fields(b[closing+1:])
	// rest[0] is field 3 (state); starttime is field 22.
	if len(rest) < 20 || len(rest[0]) != 1 {
		return s, errMalformed
	}
	s.state = rest[0][0]
	ppid, err := strconv.Atoi(string(rest[1]))
	if err != nil || ppid < 0 {
		return s, errMalformed
	}
	s.ppid = ppid
	if s.start, err = strconv.ParseUint(string(rest[19]), 10, 64); err != nil {
		return s, errMalformed
	}
	return s, nil
}

// statusInfo is what the collector reads from /proc/<pid>/status.
type statusInfo struct {
	uid, euid, gid, egid int
	capEff               uint64
	hasIDs               bool
}

// parseStatus parses the Uid, Gid and CapEff lines of /proc/<pid>/status.
func parseStatus(b []byte) (statusInfo, error) {
	var s statusInfo
	var seenUID, seenGID bool
	for line := range bytes.Lines(b) {
		key, val, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		f := bytes.Fields(val)
		switch string(key) {
		case "Uid", "Gid":
			if len(f) < 2 {
				return s, errMalformed
			}
			real, err1 := strconv.Atoi(string(f[0]))
			eff, err2 := strconv.Atoi(string(f[1]))
			if err1 != nil || err2 != nil {
				return s, errMalformed
			}
			if key[0] == 'U' {
				s.uid, s.euid, seenUID = real, eff, true
			} else {
				s.gid, s.egid, seenGID = real, eff, true
			}
		case "CapEff":
			if len(f) != 1 {
				return s, errMalformed
			}
			v, err := strconv.ParseUint(string(f[0]), 16, 64)
			if err != nil {
				return s, errMalformed
			}
			s.capEff = v
		}
	}
	s.hasIDs = seenUID && seenGID
	if !s.hasIDs {
		return s, errMalformed
	}
	return s, nil
}

// parseCmdline splits /proc/<pid>/cmdline (NUL-separated) into at most
// maxArgs arguments of at most maxArgBytes bytes each; truncated says
// whether anything was cut.
func parseCmdline(b []byte, maxArgs, maxArgBytes int) (args []string, truncated bool) {
	b = bytes.TrimRight(b, "\x00")
	if len(b) == 0 {
		return nil, false
	}
	for a := range bytes.SplitSeq(b, []byte{0}) {
		if len(args) == maxArgs {
			return args, true
		}
		if len(a) > maxArgBytes {
			a, truncated = a[:maxArgBytes], true
		}
		args = append(args, string(a))
	}
	return args, truncated
}

// containerID finds a container id in /proc/<pid>/cgroup: the last path
// segment holding a 64-hex-digit id, bare (cgroupfs driver:
// /kubepods/burstable/pod<uid>/<id>, /docker/<id>) or wrapped by the
// systemd driver (cri-containerd-<id>.scope, docker-<id>.scope,
// crio-<id>.scope, libpod-<id>.scope). "" when the process is in no
// container this recognizes.
func containerID(cgroup []byte) string {
	var id string
	for line := range bytes.Lines(cgroup) {
		// hierarchy-ID:controllers:path
		_, rest, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		_, path, ok := bytes.Cut(rest, []byte(":"))
		if !ok {
			continue
		}
		path = bytes.TrimRight(path, "\r\n")
		for seg := range bytes.SplitSeq(path, []byte("/")) {
			if c := idInSegment(seg); c != "" {
				id = c
			}
		}
	}
	return id
}

func idInSegment(seg []byte) string {
	seg = bytes.TrimSuffix(seg, []byte(".scope"))
	if i := bytes.LastIndexAny(seg, "-:"); i >= 0 {
		seg = seg[i+1:]
	}
	if len(seg) != 64 {
		return ""
	}
	for _, c := range seg {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return ""
		}
	}
	return string(seg)
}

// socket is one line of /proc/net/{tcp,tcp6,udp,udp6}.
type socket struct {
	transport     string // tcp, udp
	local, remote netip.AddrPort
	state         byte
	uid           int
	inode         uint64
}

// TCP states (include/net/tcp_states.h) the collector reports.
const (
	tcpEstablished = 0x01
	tcpSynSent     = 0x02
	tcpListen      = 0x0A
	udpUnconnected = 0x07 // TCP_CLOSE: a bound, unconnected UDP socket
)

func stateName(transport string, st byte) string {
	switch {
	case st == tcpEstablished:
		return "ESTABLISHED"
	case st == tcpSynSent:
		return "SYN_SENT"
	case st == tcpListen:
		return "LISTEN"
	case st == udpUnconnected && transport == "udp":
		return "UNCONNECTED"
	}
	return "0x" + strconv.FormatUint(uint64(st), 16)
}

// parseNetTable parses a /proc/net table, calling yield for each socket
// line it can read; malformed lines are counted, not fatal.
func parseNetTable(b []byte, transport string, yield func(socket)) (bad int) {
	first := true
	for line := range bytes.Lines(b) {
		if first { // the header
			first = false
			continue
		}
		f := bytes.Fields(line)
		if len(f) == 0 {
			continue
		}
		if len(f) < 10 {
			bad++
			continue
		}
		var s socket
		var ok1, ok2 bool
		s.transport = transport
		s.local, ok1 = parseHexAddrPort(f[1])
		s.remote, ok2 = parseHexAddrPort(f[2])
		st, err := strconv.ParseUint(string(f[3]), 16, 8)
		uid, err2 := strconv.Atoi(string(f[7]))
		inode, err3 := strconv.ParseUint(string(f[9]), 10, 64)
		if !ok1 || !ok2 || err != nil || err2 != nil || err3 != nil {
			bad++
			continue
		}
		s.state, s.uid, s.inode = byte(st), uid, inode
		yield(s)
	}
	return bad
}

// parseHexAddrPort decodes "0100007F:1F90" (IPv4) or a 32-digit IPv6
// address, each 32-bit word in host byte order, and a big-endian port.
func parseHexAddrPort(b []byte) (netip.AddrPort, bool) {
	a, p, ok := bytes.Cut(b, []byte(":"))
	if !ok || len(p) != 4 {
		return netip.AddrPort{}, false
	}
	port, err := strconv.ParseUint(string(p), 16, 16)
	if err != nil {
		return netip.AddrPort{}, false
	}
	var raw [16]byte
	switch len(a) {
	case 8:
		if _, err := hex.Decode(raw[:4], a); err != nil {
			return netip.AddrPort{}, false
		}
		w := binary.NativeEndian.Uint32(raw[:4])
		var v4 [4]byte
		binary.BigEndian.PutUint32(v4[:], w)
		return netip.AddrPortFrom(netip.AddrFrom4(v4), uint16(port)), true
	case 32:
		if _, err := hex.Decode(raw[:], a); err != nil {
			return netip.AddrPort{}, false
		}
		var v6 [16]byte
		for i := 0; i < 16; i += 4 {
			binary.BigEndian.PutUint32(v6[i:], binary.NativeEndian.Uint32(raw[i:i+4]))
		}
		return netip.AddrPortFrom(netip.AddrFrom16(v6).Unmap(), uint16(port)), true
	}
	return netip.AddrPort{}, false
}

// Capability names by bit (include/uapi/linux/capability.h).
var capNames = [...]string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
	"CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
	"CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK",
	"CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE",
	"CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE",
	"CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE",
	"CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG",
	"CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
	"CAP_CHECKPOINT_RESTORE",
}

const (
	capNetAdmin    = 12
	capSysPtrace   = 19
	capDacReadSrch = 2
)

func capList(mask uint64) []string {
	out := []string{}
	for i := range 64 {
		if mask&(1<<i) == 0 {
			continue
		}
		if i < len(capNames) {
			out = append(out, capNames[i])
		} else {
			out = append(out, "CAP_"+strconv.Itoa(i))
		}
	}
	return out
}
