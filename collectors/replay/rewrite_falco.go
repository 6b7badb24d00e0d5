package replay

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"

	"github.com/crowsnest-siem/crowsnest/bus/topology"
)

// falcoRewriter rewrites Falco JSON alerts: a new uuid per record; time,
// output_fields["evt.time"] and the timestamp that starts the output line set
// to now. Falco gives no identity a re-sent alert would repeat, so the
// message id comes from the position.
type falcoRewriter struct{}

// Layouts of the time that starts a Falco output line: ISO 8601 (the
// time_format_iso_8601 option) or the default time of day.
const (
	falcoOutputISO  = "2006-01-02T15:04:05.000000000-0700"
	falcoOutputTime = "15:04:05.000000000"
)

func (falcoRewriter) timestamp(data []byte) (time.Time, error) {
	v := gjson.GetBytes(data, "time")
	if v.Type != gjson.String {
		return time.Time{}, errors.New("falco alert without time")
	}
	return parseTime(v.Str)
}

func (falcoRewriter) rewrite(s *sample, pos position, now time.Time) ([]byte, string, error) {
	data := s.data
	var err error
	if gjson.GetBytes(data, "uuid").Exists() {
		if data, err = sjson.SetBytes(data, "uuid", deriveUUID(pos, "falco/"+strconv.Itoa(pos.index))); err != nil {
			return nil, "", fmt.Errorf("set uuid: %w", err)
		}
	}
	if data, err = shiftPaths(data, now.Sub(s.at), "time"); err != nil {
		return nil, "", err
	}
	if gjson.GetBytes(data, `output_fields.evt\.time`).Type == gjson.Number {
		if data, err = sjson.SetBytes(data, `output_fields.evt\.time`, now.UnixNano()); err != nil {
			return nil, "", fmt.Errorf("set evt.time: %w", err)
		}
	}
	if out := gjson.GetBytes(data, "output"); out.Type == gjson.String {
		if rewritten, ok := rewriteOutputTime(out.Str, now); ok {
			if data, err = sjson.SetBytes(data, "output", rewritten); err != nil {
				return nil, "", fmt.Errorf("set output: %w", err)
			}
		}
	}
	return data, positionID(topology.SourceFalco, pos), nil
}

// rewriteOutputTime replaces the timestamp before the first ": " of a Falco
// output line with now, in the same layout.
func rewriteOutputTime(output string, now time.Time) (string, bool) {
	prefix, rest, ok := strings.Cut(output, ": ")
	if !ok {
		return "", false
	}
	for _, layout := range []string{falcoOutputISO, falcoOutputTime} {
		if _, err := time.Parse(layout, prefix); err == nil {
			return now.UTC().Format(layout) + ": " + rest, true
		}
	}
	return "", false
}
