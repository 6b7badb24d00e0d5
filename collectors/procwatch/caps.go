package procwatch

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
)

// capabilities assesses what the collector can see with its privileges
// and queues a capabilities event at start and whenever that changes.
func (c *Collector) capabilities(reason string) {
	ev := capabilitiesEvent{Kind: KindCapabilities, Format: Format, Time: now(), Host: c.host, Reason: reason}
	ev.Collector = self{PID: c.self, UID: os.Getuid(), EUID: os.Geteuid(), GID: os.Getgid(), Capabilities: []string{}}
	var capEff uint64
	if b, err := os.ReadFile(filepath.Join(c.cfg.ProcRoot, "self", "status")); err == nil {
		if s, err := parseStatus(b); err == nil {
			capEff = s.capEff
			ev.Collector.Capabilities = capList(capEff)
		}
	}
	v := &ev.Visibility
	v.ProcessesVisible = c.scanErrs.visible
	v.OtherProcesses = c.scanErrs.others > 0
	v.ExeUnreadableCount = c.scanErrs.exeDenied
	v.ExeReadable = share(c.scanErrs.others, c.scanErrs.exeDenied)
	others, fdDenied := 0, 0
	for pid := range c.procs {
		if pid == c.self {
			continue
		}
		others++
		if _, err := os.ReadDir(filepath.Join(c.cfg.ProcRoot, strconv.Itoa(pid), "fd")); errors.Is(err, fs.ErrPermission) {
			fdDenied++
		}
	}
	v.FDUnreadableCount = fdDenied
	v.FDReadable = share(others, fdDenied)
	v.NetTables = []string{}
	if c.cfg.Network {
		for _, t := range netTables {
			if _, err := os.ReadFile(filepath.Join(c.cfg.ProcRoot, "net", t.name)); err == nil {
				v.NetTables = append(v.NetTables, t.name)
			} else {
				v.NetTablesUnreadable = append(v.NetTablesUnreadable, t.name)
			}
		}
	}
	v.ExecDetection = "poll"
	v.PollInterval = c.cfg.PollInterval.String()
	switch {
	case c.conn != nil:
		v.ExecDetection = "netlink+poll"
		v.NetlinkProcConnector = "in use"
	case !c.cfg.NetlinkProcConnector:
		v.NetlinkProcConnector = "off (netlink_proc_connector: false)"
	case capEff&(1<<capNetAdmin) == 0:
		v.NetlinkProcConnector = "unavailable: needs CAP_NET_ADMIN"
	default:
		v.NetlinkProcConnector = "unavailable: " + fmt.Sprint(c.connErr)
	}
	if c.files != nil {
		v.FileWatches, v.FileWatchErrors = c.files.watched, c.files.failures
	}
	if c.conn == nil {
		v.Limitations = []string{"processes that start and exit within poll_interval are not seen"}
	} else {
		v.Limitations = []string{"a process that exits before /proc is read is reported with its pid only"}
	}
	if !v.OtherProcesses {
		v.Limitations = append(v.Limitations, "no other process is visible: run with shareProcessNamespace: true to watch the pod")
	}
	if v.ExeUnreadableCount > 0 {
		v.Limitations = append(v.Limitations, "exe and cwd of processes of other users are unreadable without CAP_SYS_PTRACE")
	}
	if fdDenied > 0 {
		v.Limitations = append(v.Limitations, "sockets of processes of other users cannot be mapped to them without CAP_SYS_PTRACE")
	}
	if !c.cfg.Network {
		v.Limitations = append(v.Limitations, "network reporting is off")
	}

	// The signature leaves out the counts, which move all the time.
	sig := *v
	sig.ProcessesVisible, sig.ExeUnreadableCount, sig.FDUnreadableCount = 0, 0, 0
	b, _ := json.Marshal(struct {
		S visibility
		C []string
	}{sig, ev.Collector.Capabilities}) // plain structs of strings: cannot fail
	if string(b) == c.lastCaps {
		return
	}
	c.lastCaps = string(b)
	c.add(ev, "caps|"+ev.Time)
}

// share says whether all, some or none of n items are readable, denied
// being unreadable.
func share(n, denied int) string {
	switch {
	case n == 0 || denied == 0:
		return "all"
	case denied == n:
		return "none"
	}
	return "some"
}
