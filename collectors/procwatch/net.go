package procwatch

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// netTables are the socket tables read, with their transport. They show the
// collector's network namespace, which a pod's containers share.
var netTables = [...]struct{ name, transport string }{
	{"tcp", "tcp"}, {"tcp6", "tcp"}, {"udp", "udp"}, {"udp6", "udp"},
}

type listenKey struct {
	transport string
	port      uint16
}

// scanNet reports new listeners and connections.
func (c *Collector) scanNet(first bool) {
	var cur []socket
	for _, t := range netTables {
		b, err := os.ReadFile(filepath.Join(c.cfg.ProcRoot, "net", t.name))
		if err != nil {
			continue // reported by the capabilities event
		}
		if bad := parseNetTable(b, t.transport, func(s socket) {
			if s.inode != 0 && interesting(s) {
				cur = append(cur, s)
			}
		}); bad > 0 {
			c.log.Debug("malformed socket lines", "table", t.name, "lines", bad)
		}
	}
	listening := map[listenKey]bool{}
	present := make(map[uint64]bool, len(cur))
	var fresh []socket
	for _, s := range cur {
		present[s.inode] = true
		if isListen(s) {
			listening[listenKey{s.transport, s.local.Port()}] = true
		}
		if !c.sockets[s.inode] {
			fresh = append(fresh, s)
		}
	}
	for ino := range c.sockets {
		if !present[ino] {
			delete(c.sockets, ino)
		}
	}
	if len(fresh) == 0 {
		return
	}
	owners := c.socketOwners(fresh)
	seen := "poll"
	if first {
		seen = "startup"
	}
	for _, s := range fresh {
		c.sockets[s.inode] = true
		ev := networkEvent{Format: Format, Time: now(), Host: c.host, Seen: seen, Transport: s.transport, Type: "ipv4",
			Local:  endpoint{IP: s.local.Addr().String(), Port: s.local.Port()},
			Socket: socketInfo{Inode: s.inode, UID: s.uid, State: stateName(s.transport, s.state)}}
		if s.local.Addr().Is6() {
			ev.Type = "ipv6"
		}
		if isListen(s) {
			ev.Kind = KindNetworkListen
		} else {
			ev.Kind = KindNetworkConnection
			ev.Remote = &endpoint{IP: s.remote.Addr().String(), Port: s.remote.Port()}
			ev.Direction = "outbound"
			if listening[listenKey{s.transport, s.local.Port()}] {
				ev.Direction = "inbound"
			}
		}
		if pid, ok := owners[s.inode]; ok {
			np := &netProcess{PID: pid}
			if ps := c.procs[pid]; ps != nil {
				np.Name, np.Exe, np.StartTime, np.ContainerID = ps.name, ps.exe, ps.startTime, ps.containerID
			}
			ev.Process = np
		}
		c.add(ev, "net|"+ev.Kind+"|"+strconv.FormatUint(s.inode, 10))
	}
}

func interesting(s socket) bool {
	switch s.transport {
	case "tcp":
		return s.state == tcpListen || s.state == tcpEstablished || s.state == tcpSynSent
	case "udp":
		return (s.state == udpUnconnected && s.local.Port() != 0) || s.state == tcpEstablished
	}
	return false
}

func isListen(s socket) bool {
	return s.state == tcpListen || (s.transport == "udp" && s.state == udpUnconnected)
}

// socketOwners maps the inodes of fresh sockets to the processes holding
// them, through /proc/<pid>/fd. A process whose fds it may not read
// (another user, no CAP_SYS_PTRACE) leaves its sockets unmapped.
func (c *Collector) socketOwners(fresh []socket) map[uint64]int {
	want := make(map[uint64]bool, len(fresh))
	for _, s := range fresh {
		want[s.inode] = true
	}
	out := map[uint64]int{}
	for pid := range c.procs {
		dir := filepath.Join(c.cfg.ProcRoot, strconv.Itoa(pid), "fd")
		ents, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, e := range ents {
			link, err := os.Readlink(filepath.Join(dir, e.Name()))
			if err != nil {
				continue
			}
			v, ok := strings.CutPrefix(link, "socket:[")
			if !ok {
				continue
			}
			ino, err := strconv.ParseUint(strings.TrimSuffix(v, "]"), 10, 64)
			if err == nil && want[ino] {
				out[ino] = pid
				if len(out) == len(want) {
					return out
				}
			}
		}
	}
	return out
}
