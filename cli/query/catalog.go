package query

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/crowsnest-siem/crowsnest/sinks/clickhouse/hunts"
)

// Hunt is one named hunt with everything needed to run it on each backend.
type Hunt struct {
	// Hunt is the catalogue entry: name, description, parameters, columns
	// and the ClickHouse SQL.
	hunts.Hunt
	elastic elasticHunt
}

// Catalog returns every hunt, sorted by name. It fails when a hunt has no
// Elasticsearch implementation or an implementation has no hunt: the two
// backends may not drift apart.
func Catalog() ([]Hunt, error) {
	all, err := hunts.All()
	if err != nil {
		return nil, err
	}
	impls := elasticHunts()
	var errs []error
	out := make([]Hunt, 0, len(all))
	for _, h := range all {
		e, ok := impls[h.Name]
		if !ok {
			errs = append(errs, fmt.Errorf("hunt %s has no Elasticsearch implementation", h.Name))
			continue
		}
		delete(impls, h.Name)
		out = append(out, Hunt{Hunt: h, elastic: e})
	}
	for name := range impls {
		errs = append(errs, fmt.Errorf("Elasticsearch implementation %s has no hunt in sinks/clickhouse/hunts", name))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("hunt catalogue: %w", err)
	}
	return out, nil
}

// Find returns the hunt called name from the catalogue, or an error that
// suggests the nearest names.
func Find(catalog []Hunt, name string) (Hunt, error) {
	for _, h := range catalog {
		if h.Name == name {
			return h, nil
		}
	}
	names := make([]string, len(catalog))
	for i, h := range catalog {
		names[i] = h.Name
	}
	if s := suggest(name, names); len(s) > 0 {
		return Hunt{}, fmt.Errorf("unknown hunt %q: did you mean %s? (crowsnest query --list describes every hunt)", name, strings.Join(s, " or "))
	}
	return Hunt{}, fmt.Errorf("unknown hunt %q: the hunts are %s (crowsnest query --list describes them)", name, strings.Join(names, ", "))
}

// suggest returns the names close to typed: containing it or contained in
// it, or within a few edits of it.
func suggest(typed string, names []string) []string {
	typed = strings.ToLower(strings.ReplaceAll(typed, "-", "_"))
	var out []string
	for _, n := range names {
		if typed == "" {
			break
		}
		if strings.Contains(n, typed) || strings.Contains(typed, n) || editDistance(typed, n) <= max(2, len(n)/4) ||
			commonPrefix(typed, n) >= max(4, len(typed)*2/3) {
			out = append(out, n)
		}
	}
	return out
}

// commonPrefix is how many leading bytes a and b share.
func commonPrefix(a, b string) int {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return n
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// Params returns every parameter any hunt of the catalogue takes, in
// order of first appearance.
func Params(catalog []Hunt) []hunts.Param {
	var out []hunts.Param
	for _, h := range catalog {
		for _, p := range h.Params {
			if !slices.ContainsFunc(out, func(q hunts.Param) bool { return q.Name == p.Name }) {
				out = append(out, p)
			}
		}
	}
	return out
}
