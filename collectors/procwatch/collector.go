package procwatch

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/crowsnest-siem/crowsnest/bus/msgid"
	"github.com/crowsnest-siem/crowsnest/bus/topology"
	"github.com/crowsnest-siem/crowsnest/collectors/entitykey"
	"github.com/crowsnest-siem/crowsnest/collectors/publish"
)

// Publisher is what the collector needs of the publisher.
type Publisher interface {
	NewBatch() *publish.Batch
}

var _ Publisher = (*publish.Publisher)(nil)

// Settings is what the code gives a Collector.
type Settings struct {
	// Publisher takes the events. Required.
	Publisher Publisher
	// Logger; nil discards.
	Logger *slog.Logger
	// Hostname names the pod or node in events; empty: os.Hostname.
	Hostname string
	// Namespace is the watched pod's namespace; empty: $POD_NAMESPACE (set
	// it from the Downward API). It keys every record (entitykey), so the
	// pod's process events reach the processor replica that sees its audit
	// events; without it they are keyed by the collector's node.
	Namespace string
}

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat's starttime: 100 on
// every Linux architecture crowsnest builds for.
const clockTicks = 100

// Collector watches processes, sockets and files.
type Collector struct {
	cfg  Config
	pub  Publisher
	log  *slog.Logger
	host host
	key  string    // the records' partition key
	boot time.Time // from btime

	procs    map[int]*procState
	sockets  map[uint64]bool // inodes reported
	files    *fileWatcher
	lastCaps string
	self     int

	scanErrs scanStats
	pending  []publish.Record

	// The process events connector, when it could be opened.
	conn       *procConnector
	connErr    error
	execs      chan execEvent
	netDropped atomic.Int64
}

// procState is what is remembered of a running process.
type procState struct {
	start       uint64
	name, exe   string
	argsKey     string
	containerID string
	startTime   string
}

// scanStats is what the last process scan could not read.
type scanStats struct {
	visible, others, exeDenied int
}

// New validates cfg and returns a Collector. Run starts it.
func New(cfg Config, s Settings) (*Collector, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("procwatch config: %w", err)
	}
	if s.Publisher == nil {
		return nil, errors.New("procwatch: Settings.Publisher is nil")
	}
	log := s.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h := s.Hostname
	if h == "" {
		var err error
		if h, err = os.Hostname(); err != nil {
			h = "unknown"
		}
	}
	ns := s.Namespace
	if ns == "" {
		ns = os.Getenv("POD_NAMESPACE")
	}
	return &Collector{cfg: cfg, pub: s.Publisher, log: log.With("component", ConfigKey, "source", topology.SourceProcwatch),
		host: host{Hostname: h}, key: entitykey.Namespace(ns), self: os.Getpid()}, nil
}

// Run scans until ctx ends and returns ctx's error, or an error when the
// publisher fails or /proc cannot be read at all.
func (c *Collector) Run(ctx context.Context) error {
	if err := c.init(); err != nil {
		return err
	}
	if c.files != nil {
		defer c.files.close()
	}
	if c.cfg.NetlinkProcConnector {
		c.conn, c.connErr = openProcConnector()
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if c.conn != nil {
		defer c.conn.close()
		c.execs = make(chan execEvent, 4096)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := c.conn.run(ctx, c.execs, func() { c.netDropped.Add(1) }); err != nil {
				c.log.Error("process events connector failed; polling only", "error", err)
			}
		}()
	}
	if err := c.poll(ctx, true); err != nil {
		return err
	}
	t := time.NewTicker(c.cfg.PollInterval)
	defer t.Stop()
	lastCaps := time.Now()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case ev := <-c.execs:
			c.execNow(ev)
			for range 255 { // what else is queued, then publish at once
				select {
				case ev := <-c.execs:
					c.execNow(ev)
					continue
				default:
				}
				break
			}
			if err := c.flush(ctx); err != nil {
				return err
			}
			continue
		case <-t.C:
		}
		if err := c.poll(ctx, false); err != nil {
			return err
		}
		if time.Since(lastCaps) >= c.cfg.CapabilityInterval {
			lastCaps = time.Now()
			c.capabilities("change")
			if err := c.flush(ctx); err != nil {
				return err
			}
		}
	}
}

func (c *Collector) init() error {
	c.procs = map[int]*procState{}
	c.sockets = map[uint64]bool{}
	if b, err := os.ReadFile(filepath.Join(c.cfg.ProcRoot, "sys/kernel/random/boot_id")); err == nil {
		c.host.BootID = strings.TrimSpace(string(b))
	}
	stat, err := os.ReadFile(filepath.Join(c.cfg.ProcRoot, "stat"))
	if err != nil {
		return fmt.Errorf("procwatch: read %s/stat: %w", c.cfg.ProcRoot, err)
	}
	for line := range bytes.Lines(stat) {
		if v, ok := bytes.CutPrefix(line, []byte("btime ")); ok {
			sec, err := strconv.ParseInt(string(bytes.TrimSpace(v)), 10, 64)
			if err == nil {
				c.boot = time.Unix(sec, 0).UTC()
			}
		}
	}
	if c.boot.IsZero() {
		return fmt.Errorf("procwatch: no btime in %s/stat", c.cfg.ProcRoot)
	}
	if len(c.cfg.Files) > 0 {
		fw, err := newFileWatcher(c.cfg.Files, int64(c.cfg.MaxHashBytes), c.log)
		if err != nil {
			return err
		}
		c.files = fw
	}
	return nil
}

// poll runs one scan of everything and publishes what it found.
func (c *Collector) poll(ctx context.Context, first bool) error {
	if err := c.scanProcs(first); err != nil {
		return err
	}
	if c.cfg.Network {
		c.scanNet(first)
	}
	if c.files != nil {
		for _, fe := range c.files.poll() {
			fe.Host = c.host
			c.add(fe, "file|"+fe.File.Path+"|"+fe.File.Op+"|"+fe.File.SHA256+"|"+fe.File.Mtime+"|"+fe.Time)
		}
	}
	if first {
		c.capabilities("start")
	}
	return c.flush(ctx)
}

// add encodes ev as a record with an id derived from key, the event's
// identity (the same process seen again after a restart gets the same id).
func (c *Collector) add(ev any, key string) {
	b, err := json.Marshal(ev)
	if err != nil {
		c.log.Error("encode event", "error", err) // only unsupported types fail: a bug
		return
	}
	c.pending = append(c.pending, publish.Record{
		Source: topology.SourceProcwatch, Data: b,
		ID: msgid.FromContent(topology.SourceProcwatch, []byte(c.host.BootID+"|"+c.host.Hostname+"|"+key)), Observed: time.Now(),
		Key: c.key,
	})
}

// flush publishes the pending records and waits for their acknowledgement.
func (c *Collector) flush(ctx context.Context) error {
	if len(c.pending) == 0 {
		return nil
	}
	b := c.pub.NewBatch()
	for _, r := range c.pending {
		if err := b.Add(ctx, r); err != nil {
			b.Seal()
			return fmt.Errorf("procwatch: publish: %w", err)
		}
	}
	n := len(c.pending)
	c.pending = c.pending[:0]
	if err := b.Wait(ctx); err != nil {
		return fmt.Errorf("procwatch: wait for %d acknowledgements: %w", n, err)
	}
	return nil
}

func (c *Collector) startTime(ticks uint64) string {
	return c.boot.Add(time.Duration(ticks) * (time.Second / clockTicks)).Format(time.RFC3339Nano)
}

func now() string { return time.Now().UTC().Format(time.RFC3339Nano) }

// scanProcs finds started, exec'd and exited processes.
func (c *Collector) scanProcs(first bool) error {
	entries, err := os.ReadDir(c.cfg.ProcRoot)
	if err != nil {
		return fmt.Errorf("procwatch: read %s: %w", c.cfg.ProcRoot, err)
	}
	seen := make(map[int]bool, len(c.procs))
	stats := scanStats{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid <= 0 {
			continue
		}
		dir := filepath.Join(c.cfg.ProcRoot, e.Name())
		b, err := os.ReadFile(filepath.Join(dir, "stat"))
		if err != nil {
			continue // gone
		}
		st, err := parseStat(b)
		if err != nil {
			c.log.Debug("unreadable stat", "pid", pid, "error", err)
			continue
		}
		if pid == 2 || st.ppid == 2 {
			continue // kernel threads
		}
		seen[pid] = true
		stats.visible++
		if pid != c.self && st.ppid != c.self {
			stats.others++
		}
		old := c.procs[pid]
		if old != nil && old.start == st.start && old.name == st.comm {
			continue
		}
		ev, ps := c.describe(pid, dir, st)
		if pid != c.self && ps.exe == "" {
			stats.exeDenied++
		}
		if old != nil && old.start == st.start && old.exe == ps.exe && old.argsKey == ps.argsKey {
			old.name = st.comm // renamed itself (prctl), same program
			continue
		}
		if old != nil && old.start != st.start {
			c.exit(pid, old) // the pid was reused between two scans
		}
		c.procs[pid] = ps
		ev.Seen = "poll"
		if first {
			ev.Seen = "startup"
		}
		c.add(ev, "exec|"+strconv.Itoa(pid)+"|"+strconv.FormatUint(st.start, 10)+"|"+ps.exe+"|"+ps.argsKey)
	}
	for pid, ps := range c.procs {
		if !seen[pid] {
			c.exit(pid, ps)
			delete(c.procs, pid)
		}
	}
	c.scanErrs = stats
	return nil
}

// execNow reads a process the connector reported right away, before it
// can exit; one that is gone already is reported with what the kernel said.
func (c *Collector) execNow(ev execEvent) {
	pid := ev.tgid
	dir := filepath.Join(c.cfg.ProcRoot, strconv.Itoa(pid))
	b, err := os.ReadFile(filepath.Join(dir, "stat"))
	var st statInfo
	if err == nil {
		st, err = parseStat(b)
	}
	if err != nil {
		at := c.boot.Add(time.Duration(ev.at)).Format(time.RFC3339Nano)
		pe := processEvent{Kind: KindProcessExec, Format: Format, Time: at, Host: c.host, Seen: "netlink",
			Process: process{PID: pid}, Errors: []string{"process exited before /proc could be read"}}
		c.add(pe, "exec|"+strconv.Itoa(pid)+"|netlink|"+strconv.FormatInt(ev.at, 10))
		return
	}
	if pid == 2 || st.ppid == 2 {
		return
	}
	pe, ps := c.describe(pid, dir, st)
	if old := c.procs[pid]; old != nil && old.start == st.start && old.exe == ps.exe && old.argsKey == ps.argsKey {
		return // seen already
	}
	c.procs[pid] = ps
	pe.Seen = "netlink"
	c.add(pe, "exec|"+strconv.Itoa(pid)+"|"+strconv.FormatUint(st.start, 10)+"|"+ps.exe+"|"+ps.argsKey)
}

func (c *Collector) exit(pid int, ps *procState) {
	ev := processEvent{Kind: KindProcessExit, Format: Format, Time: now(), Host: c.host,
		Process: process{PID: pid, StartTime: ps.startTime, Name: ps.name, Exe: ps.exe, ContainerID: ps.containerID}}
	c.add(ev, "exit|"+strconv.Itoa(pid)+"|"+ps.startTime)
}

// describe reads what it can of a new process; what it cannot read is
// listed in the event's errors.
func (c *Collector) describe(pid int, dir string, st statInfo) (processEvent, *procState) {
	p := process{PID: pid, PPID: st.ppid, StartTime: c.startTime(st.start), Name: st.comm}
	var errs []string
	note := func(what string, err error) {
		switch {
		case errors.Is(err, fs.ErrPermission):
			errs = append(errs, what+": permission denied")
		case errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ESRCH):
			errs = append(errs, what+": process exited")
		default:
			errs = append(errs, what+": "+err.Error())
		}
	}
	if b, err := os.ReadFile(filepath.Join(dir, "cmdline")); err == nil {
		p.Args, p.ArgsTruncated = parseCmdline(b, c.cfg.MaxArgs, c.cfg.MaxArgBytes)
	} else {
		note("cmdline", err)
	}
	if exe, err := os.Readlink(filepath.Join(dir, "exe")); err == nil {
		p.Exe = exe
	} else {
		note("exe", err)
	}
	if cwd, err := os.Readlink(filepath.Join(dir, "cwd")); err == nil {
		p.Cwd = cwd
	} else {
		note("cwd", err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "status")); err == nil {
		if s, err := parseStatus(b); err == nil {
			p.UID, p.EUID, p.GID, p.EGID = &s.uid, &s.euid, &s.gid, &s.egid
		} else {
			note("status", err)
		}
	} else {
		note("status", err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "cgroup")); err == nil {
		p.ContainerID = containerID(b)
	} else {
		note("cgroup", err)
	}
	ev := processEvent{Kind: KindProcessExec, Format: Format, Time: p.StartTime, Host: c.host, Process: p, Errors: errs}
	if pp := c.procs[st.ppid]; pp != nil {
		ev.Parent = &parent{PID: st.ppid, Name: pp.name, Exe: pp.exe}
	} else if st.ppid > 0 {
		ev.Parent = &parent{PID: st.ppid}
	}
	ps := &procState{start: st.start, name: st.comm, exe: p.Exe, argsKey: strings.Join(p.Args, "\x00"),
		containerID: p.ContainerID, startTime: p.StartTime}
	return ev, ps
}
