package spool

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"time"

	"github.com/crowsnest-siem/crowsnest/bus/msgid"
	"github.com/crowsnest-siem/crowsnest/bus/topology"
	"github.com/crowsnest-siem/crowsnest/collectors/publish"
)

// A frame is magic (2 bytes), payload length (4, little endian), CRC-32C of
// the payload (4), payload. The payload starts with its version (1 byte):
//
//	version 1: source length (1), source, id length (1), id, observed unix
//	           nanoseconds (8), data. Spools written before the partition key
//	           and the dead-letter reason were kept; still read.
//	version 2: source length (1), source, id length (1), id, observed unix
//	           nanoseconds (8), key length (uvarint), key, dead-letter reason
//	           length (uvarint), reason, data.
//
// Version 2 carries every field of publish.Record (a test fails when one is
// added and not here): a spooled record replays exactly as it was handed in.
const (
	magic0, magic1 = 0xC5, 0x50
	headerLen      = 2 + 4 + 4
	payloadV1      = 1
	payloadV2      = 2
	// maxPayload bounds a frame's length field: a corrupted length must not
	// make the reader allocate gigabytes. Records are at most 64 MiB
	// (publish max_event_bytes).
	maxPayload = 64<<20 + 1024
	// maxText caps the key and the dead-letter reason.
	maxText = 64 << 10
	// minPayload is the smallest valid payload (version 1, empty fields).
	minPayload = 1 + 1 + 1 + 8
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

var errTooLarge = errors.New("record too large for the spool")

// appendFrame appends rec's frame (version 2) to dst.
func appendFrame(dst []byte, rec publish.Record) ([]byte, error) {
	if len(rec.Source) > 255 || len(rec.ID) > 255 {
		return dst, errors.New("spool: source or id longer than 255 bytes")
	}
	if len(rec.Key) > maxText || len(rec.DeadLetter) > maxText {
		return dst, errors.New("spool: key or dead-letter reason longer than 64 KiB")
	}
	n := 1 + 1 + len(rec.Source) + 1 + len(rec.ID) + 8 +
		uvarintLen(len(rec.Key)) + len(rec.Key) + uvarintLen(len(rec.DeadLetter)) + len(rec.DeadLetter) + len(rec.Data)
	if n > maxPayload {
		return dst, errTooLarge
	}
	start := len(dst)
	dst = append(dst, magic0, magic1, 0, 0, 0, 0, 0, 0, 0, 0)
	dst = append(dst, payloadV2, byte(len(rec.Source)))
	dst = append(dst, rec.Source...)
	dst = append(dst, byte(len(rec.ID)))
	dst = append(dst, rec.ID...)
	dst = binary.LittleEndian.AppendUint64(dst, uint64(rec.Observed.UnixNano()))
	dst = binary.AppendUvarint(dst, uint64(len(rec.Key)))
	dst = append(dst, rec.Key...)
	dst = binary.AppendUvarint(dst, uint64(len(rec.DeadLetter)))
	dst = append(dst, rec.DeadLetter...)
	dst = append(dst, rec.Data...)
	payload := dst[start+headerLen:]
	binary.LittleEndian.PutUint32(dst[start+2:], uint32(len(payload)))
	binary.LittleEndian.PutUint32(dst[start+6:], crc32.Checksum(payload, castagnoli))
	return dst, nil
}

func uvarintLen(n int) int {
	var b [binary.MaxVarintLen64]byte
	return binary.PutUvarint(b[:], uint64(n))
}

// parseFrame reads the frame at the start of b. It returns the record and
// the frame's length; n == 0 means b holds no complete valid frame there
// (torn: b is too short for the length it claims; or corrupt).
func parseFrame(b []byte) (rec publish.Record, n int, torn bool) {
	if len(b) < headerLen {
		return rec, 0, true
	}
	if b[0] != magic0 || b[1] != magic1 {
		return rec, 0, false
	}
	plen := binary.LittleEndian.Uint32(b[2:])
	if plen > maxPayload || plen < minPayload {
		return rec, 0, false
	}
	if len(b) < headerLen+int(plen) {
		return rec, 0, true
	}
	payload := b[headerLen : headerLen+int(plen)]
	if crc32.Checksum(payload, castagnoli) != binary.LittleEndian.Uint32(b[6:]) {
		return rec, 0, false
	}
	rec, ok := decodePayload(payload)
	if !ok {
		return rec, 0, false
	}
	return rec, headerLen + int(plen), false
}

func decodePayload(p []byte) (publish.Record, bool) {
	var rec publish.Record
	version := p[0]
	if version != payloadV1 && version != payloadV2 {
		return rec, false
	}
	p = p[1:]
	sl := int(p[0])
	if len(p) < 1+sl+1 {
		return rec, false
	}
	rec.Source = string(p[1 : 1+sl])
	p = p[1+sl:]
	il := int(p[0])
	if len(p) < 1+il+8 {
		return rec, false
	}
	rec.ID = string(p[1 : 1+il])
	p = p[1+il:]
	rec.Observed = time.Unix(0, int64(binary.LittleEndian.Uint64(p)))
	p = p[8:]
	if version == payloadV2 {
		var key, reason []byte
		var ok bool
		if key, p, ok = text(p); !ok {
			return rec, false
		}
		if reason, p, ok = text(p); !ok {
			return rec, false
		}
		rec.Key, rec.DeadLetter = string(key), string(reason)
	}
	rec.Data = p
	if !topology.ValidSource(rec.Source) || msgid.Validate(rec.ID) != nil {
		return rec, false // a CRC collision on garbage; treat as corrupt
	}
	return rec, true
}

// text reads a uvarint length and that many bytes.
func text(p []byte) (v, rest []byte, ok bool) {
	n, w := binary.Uvarint(p)
	if w <= 0 || n > maxText || uint64(len(p)-w) < n {
		return nil, p, false
	}
	return p[w : w+int(n)], p[w+int(n):], true
}

// scan walks the frames of b from off, calling yield for each valid one
// with its end offset. Corrupt bytes are skipped up to the next valid frame
// and reported to gap. It returns the offset after the last valid frame and
// whether b ends in a torn frame (incomplete, not corrupt) after it.
func scan(b []byte, off int, yield func(rec publish.Record, end int) bool, gap func(from, to int)) (end int, tornTail bool) {
	end = off
	for off < len(b) {
		rec, n, torn := parseFrame(b[off:])
		if n > 0 {
			off += n
			end = off
			if !yield(rec, end) {
				return end, false
			}
			continue
		}
		next := resync(b, off+1)
		if next < 0 {
			if torn {
				return end, true
			}
			gap(off, len(b))
			return len(b), false
		}
		gap(off, next)
		off = next
	}
	return end, false
}

// resync finds the next offset at or after from where a valid frame
// starts, or -1.
func resync(b []byte, from int) int {
	for i := from; i+headerLen <= len(b); i++ {
		if b[i] != magic0 || b[i+1] != magic1 {
			continue
		}
		if _, n, _ := parseFrame(b[i:]); n > 0 {
			return i
		}
	}
	return -1
}
