package auditd

import (
	"bytes"

	"github.com/elastic/go-libaudit/v2/auparse"
)

// laterSerials is how many later serials close an event that has no
// terminating record.
const laterSerials = 4

// line is one audit record line of a chunk.
type line struct {
	start, end int // offsets in the chunk, end past the newline
	seq        uint32
	typ        auparse.AuditMessageType
	reject     string // not an audit record: why
}

// group is the lines of one event.
type group struct {
	seq        uint32
	lines      []int // indexes into the chunk's lines
	first, end int   // offsets: first line's start, last line's end
	complete   bool
	eoe        bool   // ended by its EOE record
	reject     string // a single rejected line
}

// parseLine finds a line's type and serial. A "node=<name> " prefix
// (auditd's name_format) is skipped.
func parseLine(b []byte) (seq uint32, typ auparse.AuditMessageType, reject string) {
	s := string(bytes.TrimRight(b, "\r\n"))
	if rest, ok := cutNode(s); ok {
		s = rest
	}
	msg, err := auparse.ParseLogLine(s)
	if err != nil {
		return 0, 0, "not an audit record: " + err.Error()
	}
	return msg.Sequence, msg.RecordType, ""
}

func cutNode(s string) (string, bool) {
	if len(s) < 5 || s[:5] != "node=" {
		return s, false
	}
	if i := bytes.IndexByte([]byte(s), ' '); i > 0 {
		return s[i+1:], true
	}
	return s, false
}

// terminates reports whether a record of type t ends its event (as
// go-libaudit's reassembler decides).
func terminates(t auparse.AuditMessageType) bool {
	return t == auparse.AUDIT_EOE || t == auparse.AUDIT_PROCTITLE ||
		t <= auparse.AUDIT_LAST_DAEMON || t >= auparse.AUDIT_ANOM_LOGIN_FAILURES
}

// groupChunk groups a chunk's lines into events and returns them in order
// of first appearance, and how many bytes may be consumed: the events
// entirely before that point are the ones to publish (final: all of them).
func groupChunk(chunk []byte, final bool) (ready []*group, lines []line, consumed int) {
	off := 0
	for l := range bytes.Lines(chunk) {
		ln := line{start: off, end: off + len(l)}
		off += len(l)
		if len(bytes.TrimSpace(l)) == 0 {
			ln.reject = "-" // blank: skipped
		} else {
			ln.seq, ln.typ, ln.reject = parseLine(l)
		}
		lines = append(lines, ln)
	}
	var order []*group
	open := map[uint32]*group{}
	var serials []uint32 // distinct serials in order of first appearance
	for i, ln := range lines {
		if ln.reject != "" {
			if ln.reject != "-" {
				order = append(order, &group{lines: []int{i}, first: ln.start, end: ln.end, complete: true, reject: ln.reject})
			}
			continue
		}
		g := open[ln.seq]
		if g != nil && g.complete && ln.typ == auparse.AUDIT_EOE && !g.eoe {
			// The end-of-event marker after a PROCTITLE that closed it.
			g.lines = append(g.lines, i)
			g.end, g.eoe = ln.end, true
			continue
		}
		if g == nil || g.complete {
			g = &group{seq: ln.seq, first: ln.start}
			open[ln.seq] = g
			order = append(order, g)
			serials = append(serials, ln.seq)
		}
		g.lines = append(g.lines, i)
		g.end = ln.end
		if terminates(ln.typ) {
			g.complete = true
			g.eoe = ln.typ == auparse.AUDIT_EOE
		}
	}
	// An open event is complete once enough later serials followed it.
	for _, g := range order {
		if g.complete {
			continue
		}
		later := 0
		for _, s := range serials {
			if s > g.seq {
				later++
			}
		}
		if later >= laterSerials || final {
			g.complete = true
		}
	}
	// The cut: before the first incomplete event, and before any event
	// that straddles it, so that what is offered again is whole.
	cut := len(chunk)
	for _, g := range order {
		if !g.complete && g.first < cut {
			cut = g.first
		}
	}
	for changed := true; changed; {
		changed = false
		for _, g := range order {
			if g.first < cut && g.end > cut {
				cut, changed = g.first, true
			}
		}
	}
	for _, g := range order {
		// A lone EOE (its event was published before the marker was
		// written) says nothing: consumed, not published.
		if g.end <= cut && !(len(g.lines) == 1 && g.eoe) {
			ready = append(ready, g)
		}
	}
	return ready, lines, cut
}

// eventBytes joins a group's lines, each without its line ending, with
// '\n'. A single line is returned without copying.
func eventBytes(chunk []byte, lines []line, g *group) []byte {
	if len(g.lines) == 1 {
		l := lines[g.lines[0]]
		return bytes.TrimRight(chunk[l.start:l.end], "\r\n")
	}
	var b []byte
	for i, idx := range g.lines {
		if i > 0 {
			b = append(b, '\n')
		}
		l := lines[idx]
		b = append(b, bytes.TrimRight(chunk[l.start:l.end], "\r\n")...)
	}
	return b
}
