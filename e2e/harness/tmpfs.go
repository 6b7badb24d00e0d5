package harness

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// Tmpfs is a small tmpfs mounted under the scenario directory: a disk that
// can be filled to the last byte in a moment, and emptied again.
type Tmpfs struct {
	Dir    string
	filler string
}

// MountTmpfs mounts a tmpfs of size (mount's syntax: 64m) at
// <scenario>/<name>, or skips the test saying why when it cannot (mounting
// needs root, or CAP_SYS_ADMIN in a container). It is unmounted at the end,
// lazily, so a process still holding a file there does not keep it.
func (e *Env) MountTmpfs(name, size string) *Tmpfs {
	e.t.Helper()
	dir := e.Path(name)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		e.t.Fatal(err)
	}
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size+",mode=0750", "tmpfs", dir).CombinedOutput()
	if err != nil {
		e.t.Skipf("disk-full scenario needs a tmpfs: mount -t tmpfs -o size=%s at %s failed (%v: %s); run as root or with CAP_SYS_ADMIN",
			size, dir, err, bytes.TrimSpace(out))
	}
	e.t.Cleanup(func() {
		if out, err := exec.Command("umount", "-l", dir).CombinedOutput(); err != nil {
			e.t.Errorf("umount %s: %v: %s", dir, err, bytes.TrimSpace(out))
		}
	})
	return &Tmpfs{Dir: dir, filler: filepath.Join(dir, "filler")}
}

// Fill writes a filler file until the file system refuses (ENOSPC), in
// large writes and then small ones so that not even a page is left, and
// returns its size.
func (m *Tmpfs) Fill() (int64, error) {
	f, err := os.OpenFile(m.filler, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return 0, fmt.Errorf("fill %s: %w", m.Dir, err)
	}
	defer f.Close()
	var n int64
	for _, chunk := range []int{1 << 20, 4 << 10, 1} {
		buf := make([]byte, chunk)
		for {
			w, err := f.Write(buf)
			n += int64(w)
			if errors.Is(err, syscall.ENOSPC) {
				break
			}
			if err != nil {
				return n, fmt.Errorf("fill %s: %w", m.Dir, err)
			}
		}
	}
	return n, nil
}

// Free removes the filler.
func (m *Tmpfs) Free() error {
	if err := os.Remove(m.filler); err != nil {
		return fmt.Errorf("free %s: %w", m.Dir, err)
	}
	return nil
}

// Usage is the file system's used and total bytes.
func (m *Tmpfs) Usage() (used, total uint64, err error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(m.Dir, &st); err != nil {
		return 0, 0, fmt.Errorf("statfs %s: %w", m.Dir, err)
	}
	bs := uint64(st.Bsize)
	return (st.Blocks - st.Bfree) * bs, st.Blocks * bs, nil
}

// String reports the usage: "63.9/64.0 MiB used".
func (m *Tmpfs) String() string {
	used, total, err := m.Usage()
	if err != nil {
		return err.Error()
	}
	return fmt.Sprintf("%.1f/%.1f MiB used", float64(used)/(1<<20), float64(total)/(1<<20))
}

// StartNATSOn starts nats-server like StartNATS, with its JetStream store at
// store (a Tmpfs, say) and max_file_store set high: JetStream then takes the
// streams' reservations on trust, and finds out that the disk is full only
// when a write fails, as on a shared or undersized volume.
func (e *Env) StartNATSOn(name, store string) *NATS {
	e.t.Helper()
	ports := e.Ports(2)
	conf := e.WriteFile(name+"/nats.conf", strings.Join([]string{
		"server_name: " + strconv.Quote(name),
		"listen: 127.0.0.1:" + strconv.Itoa(ports[0]),
		"http: 127.0.0.1:" + strconv.Itoa(ports[1]),
		"jetstream {",
		"  store_dir: " + strconv.Quote(store),
		"  max_file_store: 100GB",
		"}",
	}, "\n")+"\n")
	spec := Spec{
		Name:     name,
		Path:     e.Bin.NATSServer,
		Args:     []string{"-c", conf},
		Dir:      e.Path(name),
		ReadyURL: fmt.Sprintf("http://127.0.0.1:%d/healthz?js-enabled-only=true", ports[1]),
	}
	n := &NATS{URL: fmt.Sprintf("nats://127.0.0.1:%d", ports[0]), spec: spec, env: e}
	n.Proc = e.Start(spec)
	return n
}

// HealthURL is the server's /healthz?js-enabled-only=true: 200 while
// JetStream runs.
func (n *NATS) HealthURL() string { return n.spec.ReadyURL }
