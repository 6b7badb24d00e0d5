// Command compare checks that the peer's output is the same document as
// crowsnest's, so that the benchmark compares like with like: it reads two
// JSON-lines files of events, pairs them by event.id and counts the leaf
// fields (dotted paths) both write with equal values, those only one writes
// and those that differ. event.created and event.ingested are clocks and are
// skipped.
//
//	compare CROWSNEST.jsonl PEER.jsonl
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"sort"
	"strings"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: compare CROWSNEST.jsonl PEER.jsonl")
		os.Exit(2)
	}
	if err := run(os.Args[1], os.Args[2], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "compare:", err)
		os.Exit(1)
	}
}

var clocks = map[string]bool{"event.created": true, "event.ingested": true}

func run(ours, peers string, w io.Writer) error {
	a, err := load(ours)
	if err != nil {
		return err
	}
	b, err := load(peers)
	if err != nil {
		return err
	}
	if len(a) != len(b) {
		return fmt.Errorf("%d events in %s, %d in %s", len(a), ours, len(b), peers)
	}
	var equal, total int
	onlyOurs, onlyPeer, differ := map[string]int{}, map[string]int{}, map[string]int{}
	for id, x := range a {
		y, ok := b[id]
		if !ok {
			return fmt.Errorf("event %q: not in %s", id, peers)
		}
		for p, v := range x {
			if clocks[p] {
				continue
			}
			total++
			switch pv, ok := y[p]; {
			case !ok:
				onlyOurs[group(p)]++
			case !reflect.DeepEqual(v, pv):
				differ[p]++
			default:
				equal++
			}
		}
		for p := range y {
			if _, ok := x[p]; !ok && !clocks[p] {
				onlyPeer[group(p)]++
			}
		}
	}
	fmt.Fprintf(w, "%d events: %d of %d crowsnest field values written identically by the peer\n", len(a), equal, total)
	report(w, "only crowsnest writes", onlyOurs)
	report(w, "only the peer writes", onlyPeer)
	report(w, "values differ", differ)
	return nil
}

// group folds the flattened pod spec into one line.
func group(p string) string {
	if strings.HasPrefix(p, "kubernetes.pod_spec.") {
		return "kubernetes.pod_spec.*"
	}
	return p
}

func report(w io.Writer, what string, m map[string]int) {
	if len(m) == 0 {
		return
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s (%d)", k, m[k])
	}
	fmt.Fprintf(w, "  %s: %s\n", what, strings.Join(parts, ", "))
}

// load reads events keyed by event.id, each flattened to its leaf values.
func load(path string) (map[string]map[string]any, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]map[string]any{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 1<<20), 16<<20)
	for n := 1; sc.Scan(); n++ {
		var doc map[string]any
		if err := json.Unmarshal(sc.Bytes(), &doc); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, n, err)
		}
		flat := map[string]any{}
		flatten("", doc, flat)
		id, _ := flat["event.id"].(string)
		if id == "" {
			return nil, fmt.Errorf("%s:%d: no event.id", path, n)
		}
		if _, dup := out[id]; dup {
			return nil, fmt.Errorf("%s:%d: event.id %q twice (compare wants distinct records)", path, n, id)
		}
		out[id] = flat
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(out) == 0 {
		return nil, errors.New(path + ": no events")
	}
	return out, nil
}

func flatten(prefix string, v any, out map[string]any) {
	m, ok := v.(map[string]any)
	if !ok {
		out[prefix] = v
		return
	}
	for k, x := range m {
		if prefix != "" {
			k = prefix + "." + k
		}
		flatten(k, x, out)
	}
}
