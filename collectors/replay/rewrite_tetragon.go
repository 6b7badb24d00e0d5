package replay

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"

	"github.com/crowsnest-siem/crowsnest/bus/topology"
)

// tetragonRewriter rewrites Tetragon JSON export events
// ({"process_exec": {...}, "node_name": ..., "time": ...}): time set to now,
// process and container start times shifted with it, and exec ids mapped to
// new ones per (loop, original id) — so a child still names its parent's new
// exec id. Tetragon gives no per-event identity, so the message id comes from
// the position.
type tetragonRewriter struct{}

// tetragonExecIDs are the exec id fields under an event's type key.
var tetragonExecIDs = []string{
	"process.exec_id", "process.parent_exec_id",
	"parent.exec_id", "parent.parent_exec_id",
	"ancestors.#.exec_id", "ancestors.#.parent_exec_id",
}

var tetragonStartTimes = []string{
	"process.start_time", "parent.start_time",
	"process.pod.container.start_time", "parent.pod.container.start_time",
}

func (tetragonRewriter) timestamp(data []byte) (time.Time, error) {
	v := gjson.GetBytes(data, "time")
	if v.Type != gjson.String {
		return time.Time{}, errors.New("tetragon event without time")
	}
	return parseTime(v.Str)
}

// eventType is the top-level key naming the event (process_exec, ...).
func eventType(data []byte) string {
	var typ string
	gjson.ParseBytes(data).ForEach(func(k, v gjson.Result) bool {
		if v.IsObject() && strings.HasPrefix(k.Str, "process_") {
			typ = k.Str
			return false
		}
		return true
	})
	return typ
}

func (tetragonRewriter) rewrite(s *sample, pos position, now time.Time) ([]byte, string, error) {
	typ := eventType(s.data)
	if typ == "" {
		return nil, "", errors.New("tetragon event without a process_* key")
	}
	delta := now.Sub(s.at)
	paths := make([]string, 0, len(tetragonStartTimes)+1)
	paths = append(paths, "time")
	for _, p := range tetragonStartTimes {
		paths = append(paths, typ+"."+p)
	}
	data, err := shiftPaths(s.data, delta, paths...)
	if err != nil {
		return nil, "", err
	}
	for _, p := range tetragonExecIDs {
		path := typ + "." + p
		if strings.Contains(p, "#") {
			n := int(gjson.GetBytes(data, typ+".ancestors.#").Int())
			for i := range n {
				if data, err = remapExecID(data, strings.Replace(path, "#", strconv.Itoa(i), 1), pos); err != nil {
					return nil, "", err
				}
			}
			continue
		}
		if data, err = remapExecID(data, path, pos); err != nil {
			return nil, "", err
		}
	}
	return data, positionID(topology.SourceTetragon, pos), nil
}

func remapExecID(data []byte, path string, pos position) ([]byte, error) {
	v := gjson.GetBytes(data, path)
	if v.Type != gjson.String || v.Str == "" {
		return data, nil
	}
	out, err := sjson.SetBytes(data, path, newExecID(v.Str, pos))
	if err != nil {
		return nil, fmt.Errorf("set %s: %w", path, err)
	}
	return out, nil
}

// newExecID maps an exec id to a new one for pos's loop. Tetragon's ids are
// base64("<node>:<ktime>:<pid>"); the node and pid are kept and the ktime
// replaced by one derived from the original id, so the new id has the same
// shape and says the same about where the process ran.
func newExecID(old string, pos position) string {
	d := derive(pos, "tetragon-exec/"+old)
	ktime := binary.BigEndian.Uint64(d[:8]) % 1e15
	raw, err := base64.StdEncoding.DecodeString(old)
	if err == nil {
		if node, rest, ok := strings.Cut(string(raw), ":"); ok {
			if _, pid, ok := strings.Cut(rest, ":"); ok {
				return base64.StdEncoding.EncodeToString([]byte(node + ":" + strconv.FormatUint(ktime, 10) + ":" + pid))
			}
		}
	}
	return base64.StdEncoding.EncodeToString(d[:])
}
