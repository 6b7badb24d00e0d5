package procwatch

import (
	"bytes"
	"encoding/binary"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// parsed renders what the parsers make of every fixture in testdata.
func parsed(t *testing.T) []byte {
	var b bytes.Buffer
	read := func(name string) []byte {
		d, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	fmt.Fprintln(&b, "== stat.txt")
	for line := range bytes.Lines(read("stat.txt")) {
		st, err := parseStat(line)
		fmt.Fprintf(&b, "comm=%q state=%c ppid=%d start=%d err=%v\n", st.comm, max(st.state, '-'), st.ppid, st.start, err)
	}
	fmt.Fprintln(&b, "== status.txt")
	s, err := parseStatus(read("status.txt"))
	fmt.Fprintf(&b, "uid=%d euid=%d gid=%d egid=%d caps=%v err=%v\n", s.uid, s.euid, s.gid, s.egid, capList(s.capEff), err)
	fmt.Fprintln(&b, "== cgroup.txt")
	for part := range strings.SplitSeq(string(read("cgroup.txt")), "--\n") {
		fmt.Fprintf(&b, "container_id=%q\n", containerID([]byte(part)))
	}
	for _, f := range []struct{ name, transport string }{{"net_tcp.txt", "tcp"}, {"net_tcp6.txt", "tcp"}, {"net_udp.txt", "udp"}} {
		fmt.Fprintf(&b, "== %s\n", f.name)
		bad := parseNetTable(read(f.name), f.transport, func(s socket) {
			fmt.Fprintf(&b, "%s %s -> %s %s uid=%d inode=%d interesting=%v listen=%v\n", s.transport, s.local, s.remote,
				stateName(s.transport, s.state), s.uid, s.inode, interesting(s), isListen(s))
		})
		fmt.Fprintf(&b, "bad lines: %d\n", bad)
	}
	fmt.Fprintln(&b, "== cmdline")
	args, tr := parseCmdline([]byte("curl\x00-s\x00https://example.com/a-very-long-url\x00\x00"), 2, 16)
	fmt.Fprintf(&b, "%q truncated=%v\n", args, tr)
	return b.Bytes()
}

func TestParsersGolden(t *testing.T) {
	got := parsed(t)
	path := filepath.Join("testdata", "parsed.golden")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test -update creates it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("differs from %s (go test -update to accept):\n%s", path, got)
	}
}

func FuzzParseStat(f *testing.F) {
	d, _ := os.ReadFile(filepath.Join("testdata", "stat.txt"))
	for line := range bytes.Lines(d) {
		f.Add(line)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if st, err := parseStat(b); err == nil && st.ppid < 0 {
			t.Fatal("negative ppid")
		}
		_, _ = parseStatus(b)
		_ = containerID(b)
		_, _ = parseCmdline(b, 4, 16)
	})
}

func FuzzParseNetTable(f *testing.F) {
	for _, n := range []string{"net_tcp.txt", "net_tcp6.txt", "net_udp.txt"} {
		d, _ := os.ReadFile(filepath.Join("testdata", n))
		f.Add(d)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		parseNetTable(b, "tcp", func(s socket) {
			if !s.local.IsValid() || !s.remote.IsValid() {
				t.Fatalf("invalid address from %q", b)
			}
		})
	})
}

// procEventDatagram builds what the connector sends for one event.
func procEventDatagram(what uint32, tgid uint32, at uint64) []byte {
	b := make([]byte, nlmsgHdrLen+cnMsgLen+16+8)
	binary.NativeEndian.PutUint32(b[0:], uint32(len(b)))
	ev := b[nlmsgHdrLen+cnMsgLen:]
	binary.NativeEndian.PutUint32(ev[0:], what)
	binary.NativeEndian.PutUint64(ev[8:], at)
	binary.NativeEndian.PutUint32(ev[16:], tgid+1) // process_pid (a thread)
	binary.NativeEndian.PutUint32(ev[20:], tgid)
	return b
}

func TestParseProcEvents(t *testing.T) {
	d := append(procEventDatagram(procEventExec, 4242, 99), procEventDatagram(1, 7, 1)...) // an exec, then a fork
	var got []execEvent
	parseProcEvents(d, func(e execEvent) { got = append(got, e) })
	if len(got) != 1 || got[0].tgid != 4242 || got[0].at != 99 {
		t.Errorf("parsed %+v, want the one exec of 4242", got)
	}
}

func FuzzParseProcEvents(f *testing.F) {
	f.Add(procEventDatagram(procEventExec, 1, 2))
	f.Add(procEventDatagram(procEventExec, 1, 2)[:30])
	f.Fuzz(func(t *testing.T, b []byte) {
		parseProcEvents(b, func(execEvent) {})
	})
}
