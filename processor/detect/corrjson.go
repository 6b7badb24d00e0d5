package detect

import (
	"fmt"
	"strconv"
	"time"

	"github.com/crowsnest-siem/crowsnest/schemas"
)

// appendGroup encodes a window for the state store: the JSON encoding/json
// gives corrGroup (decode reads it back with json.Unmarshal), written by
// hand because a window is written on every match and may hold up to
// maxHitsPerGroup matches. Each match's encoding is kept in the match
// (corrHit.enc) the first time, so a window of n matches costs n copies
// per write, not n reflective encodings. It fails, as encoding/json does,
// on a time outside years 0..9999, which RFC 3339 cannot hold.
func appendGroup(b []byte, g *corrGroup) ([]byte, error) {
	if g.Hits == nil {
		b = append(b, `{"hits":null`...)
	} else {
		b = append(b, `{"hits":[`...)
	}
	for i := range g.Hits {
		h := &g.Hits[i]
		if h.enc == "" {
			enc, err := appendHit(nil, h)
			if err != nil {
				return nil, err
			}
			h.enc = string(enc)
		}
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, h.enc...)
	}
	if g.Hits != nil {
		b = append(b, ']')
	}
	if len(g.Fired) > 0 {
		b = append(b, `,"fired":[`...)
		for i, f := range g.Fired {
			if i > 0 {
				b = append(b, ',')
			}
			var err error
			b = append(b, `{"at":`...)
			if b, err = appendTime(b, f.At); err != nil {
				return nil, err
			}
			b = append(b, `,"ids":`...)
			b = appendStrings(b, f.EventIDs)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	b = append(b, `,"values":`...)
	b = appendStrings(b, g.Values)
	b = append(b, `,"latest":`...)
	b, err := appendTime(b, g.Latest)
	if err != nil {
		return nil, err
	}
	if g.Overflow {
		b = append(b, `,"overflow":true`...)
	}
	return append(b, '}'), nil
}

func appendHit(b []byte, h *corrHit) ([]byte, error) {
	b = append(b, `{"at":`...)
	b, err := appendTime(b, h.At)
	if err != nil {
		return nil, err
	}
	b = append(b, `,"id":`...)
	b = schemas.AppendJSONString(b, h.EventID)
	b = append(b, `,"base":`...)
	b = strconv.AppendInt(b, int64(h.Base), 10)
	if h.Value != "" {
		b = append(b, `,"value":`...)
		b = schemas.AppendJSONString(b, h.Value)
	}
	return append(b, '}'), nil
}

// appendTime is time.Time.MarshalJSON without its allocation.
func appendTime(b []byte, t time.Time) ([]byte, error) {
	if y := t.Year(); y < 0 || y > 9999 {
		return nil, fmt.Errorf("time %s: year outside 0..9999", t)
	}
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"'), nil
}

// appendStrings encodes a slice as encoding/json does (nil is null).
func appendStrings(b []byte, s []string) []byte {
	if s == nil {
		return append(b, "null"...)
	}
	b = append(b, '[')
	for i, v := range s {
		if i > 0 {
			b = append(b, ',')
		}
		b = schemas.AppendJSONString(b, v)
	}
	return append(b, ']')
}
