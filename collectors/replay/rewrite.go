package replay

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"

	"github.com/crowsnest-siem/crowsnest/bus/msgid"
	"github.com/crowsnest-siem/crowsnest/bus/topology"
)

// position is where a record sits in the replay: its loop and index, under
// one replay instance. It determines every identity the record gets.
type position struct {
	instance string
	loop     int64
	index    int
}

// rewriter knows the fields of one source that make a replayed record a new
// event. One file per source: rewrite_<source>.go.
type rewriter interface {
	// timestamp is the record's own time, or zero when it has none.
	timestamp(data []byte) (time.Time, error)
	// rewrite returns a new record: s with identities derived from pos and
	// its timestamps shifted by now - s.at; and the record's message id.
	rewrite(s *sample, pos position, now time.Time) (data []byte, id string, err error)
}

func rewriterFor(source string) rewriter {
	switch source {
	case topology.SourceK8sAudit:
		return k8sAuditRewriter{}
	case topology.SourceFalco:
		return falcoRewriter{}
	case topology.SourceTetragon:
		return tetragonRewriter{}
	}
	return verbatimRewriter{source: source}
}

// positionID is the message id of a record whose source has no natural
// identity: the msgid content form over the position rather than over the
// bytes, because the bytes carry "now" and differ when a record is re-sent
// after a restart.
func positionID(source string, pos position) string {
	return msgid.FromContent(source, []byte(pos.instance+"/"+strconv.FormatInt(pos.loop, 10)+"/"+strconv.Itoa(pos.index)))
}

// derive returns 16 bytes determined by the instance, the loop and what.
func derive(pos position, what string) [16]byte {
	h := sha256.New()
	h.Write([]byte(pos.instance))
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(pos.loop))
	h.Write(b[:])
	h.Write([]byte(what))
	var out [16]byte
	copy(out[:], h.Sum(nil))
	return out
}

// deriveUUID is a name-based UUID (version 8, RFC 9562) of what in pos's
// loop: the same original id maps to the same new one within a loop, so the
// stages of one Kubernetes request keep sharing an auditID.
func deriveUUID(pos position, what string) string {
	u := derive(pos, what)
	u[6] = u[6]&0x0f | 0x80 // version 8
	u[8] = u[8]&0x3f | 0x80 // variant 10
	var buf [36]byte
	hex.Encode(buf[0:8], u[0:4])
	buf[8] = '-'
	hex.Encode(buf[9:13], u[4:6])
	buf[13] = '-'
	hex.Encode(buf[14:18], u[6:8])
	buf[18] = '-'
	hex.Encode(buf[19:23], u[8:10])
	buf[23] = '-'
	hex.Encode(buf[24:], u[10:])
	return string(buf[:])
}

// parseTime reads an RFC 3339 timestamp.
func parseTime(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("timestamp %q: %w", s, err)
	}
	return t, nil
}

// fracDigits is how many fractional-second digits an RFC 3339 value has.
func fracDigits(s string) int {
	dot := strings.IndexByte(s, '.')
	if dot < 0 {
		return 0
	}
	n := 0
	for _, c := range s[dot+1:] {
		if c < '0' || c > '9' {
			break
		}
		n++
	}
	return n
}

// formatLike formats t in UTC with as many fractional digits as like has,
// so a rewritten record keeps its source's precision.
func formatLike(t time.Time, like string) string {
	layout := "2006-01-02T15:04:05"
	if n := fracDigits(like); n > 0 {
		layout += "." + strings.Repeat("0", min(n, 9))
	}
	return t.UTC().Format(layout + "Z07:00")
}

// shiftPaths moves the RFC 3339 string at each path by delta; absent and
// non-string values are left alone.
func shiftPaths(data []byte, delta time.Duration, paths ...string) ([]byte, error) {
	for _, p := range paths {
		v := gjson.GetBytes(data, p)
		if v.Type != gjson.String {
			continue
		}
		t, err := parseTime(v.Str)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		data, err = sjson.SetBytes(data, p, formatLike(t.Add(delta), v.Str))
		if err != nil {
			return nil, fmt.Errorf("set %s: %w", p, err)
		}
	}
	return data, nil
}

// verbatimRewriter replays records of sources without a rewriter unchanged,
// with ids from their position.
type verbatimRewriter struct{ source string }

func (verbatimRewriter) timestamp([]byte) (time.Time, error) { return time.Time{}, nil }

func (r verbatimRewriter) rewrite(s *sample, pos position, _ time.Time) ([]byte, string, error) {
	return s.data, positionID(r.source, pos), nil
}
