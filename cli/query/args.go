package query

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/crowsnest-siem/crowsnest/sinks/clickhouse/hunts"
)

// Args are a hunt's parameters, each parsed to its type: a time (UTC, to
// the millisecond), a string or a whole number. Both backends read them
// from here, so a value means the same on each.
type Args struct {
	times   map[string]time.Time
	strings map[string]string
	ints    map[string]int64
}

// Time returns time parameter name (zero if there is none).
func (a Args) Time(name string) time.Time { return a.times[name] }

// String returns string parameter name.
func (a Args) String(name string) string { return a.strings[name] }

// Int returns number parameter name.
func (a Args) Int(name string) int64 { return a.ints[name] }

// paramKind is how a parameter's ClickHouse type is read.
type paramKind int

const (
	kindTime paramKind = iota + 1
	kindString
	kindInt
)

func kindOf(p hunts.Param) (paramKind, error) {
	t := p.Type
	switch {
	case strings.HasPrefix(t, "DateTime"):
		return kindTime, nil
	case t == "String":
		return kindString, nil
	case strings.HasPrefix(t, "UInt") || strings.HasPrefix(t, "Int"):
		return kindInt, nil
	}
	return 0, fmt.Errorf("parameter %s: type %s has no reading here", p.Name, t)
}

// Default is a parameter's value when the analyst gives none, in terms of
// the others: the window is the last day, the baseline the week before it.
type Default struct {
	// Doc says what the default is, for --list.
	Doc string
	// value computes it from the time of the run and the parameters
	// resolved so far (defaults are resolved in the order of Defaults).
	value func(now time.Time, a Args) string
}

// defaultOrder is the order defaults resolve in: each may use the ones
// before it.
var defaultOrder = []string{"to", "from", "baseline_from", "user"}

// Defaults returns the parameters that may be left out and what they
// become. Every other parameter is required.
func Defaults() map[string]Default {
	return map[string]Default{
		"to": {Doc: "now", value: func(now time.Time, _ Args) string {
			return now.UTC().Format(time.RFC3339Nano)
		}},
		"from": {Doc: "24 hours before --to", value: func(_ time.Time, a Args) string {
			return a.Time("to").Add(-24 * time.Hour).Format(time.RFC3339Nano)
		}},
		"baseline_from": {Doc: "7 days before --from", value: func(_ time.Time, a Args) string {
			return a.Time("from").Add(-7 * 24 * time.Hour).Format(time.RFC3339Nano)
		}},
		"user": {Doc: "empty: everyone", value: func(time.Time, Args) string { return "" }},
	}
}

// LimitParam is the parameter a hunt that cuts its own rows short takes:
// Backend.Run binds it from its row limit, so it is never given here.
const LimitParam = "limit"

// Resolve checks raw values (by parameter name) against the hunt's
// parameters, fills the defaults, parses each value to its type and checks
// that windows do not end before they start. Times are relative to now.
func Resolve(h Hunt, raw map[string]string, now time.Time) (Args, error) {
	a := Args{times: map[string]time.Time{}, strings: map[string]string{}, ints: map[string]int64{}}
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(raw)) {
		if name == LimitParam || !slices.ContainsFunc(h.Params, func(p hunts.Param) bool { return p.Name == name }) {
			errs = append(errs, fmt.Errorf("--%s: hunt %s takes no such parameter (it takes %s)", FlagName(name), h.Name, paramList(h)))
		}
	}
	defaults := Defaults()
	order := slices.Clone(defaultOrder)
	for _, p := range h.Params {
		if !slices.Contains(order, p.Name) {
			order = append(order, p.Name)
		}
	}
	for _, name := range order {
		i := slices.IndexFunc(h.Params, func(p hunts.Param) bool { return p.Name == name })
		if i < 0 || name == LimitParam {
			continue
		}
		p := h.Params[i]
		v, ok := raw[name]
		if !ok {
			d, has := defaults[name]
			if !has {
				errs = append(errs, fmt.Errorf("--%s is required: %s", FlagName(name), p.Doc))
				continue
			}
			v = d.value(now, a)
		}
		kind, err := kindOf(p)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		switch kind {
		case kindTime:
			t, err := ParseTime(v, now)
			if err != nil {
				errs = append(errs, fmt.Errorf("--%s: %w", FlagName(name), err))
				continue
			}
			a.times[name] = t
		case kindString:
			a.strings[name] = v
		case kindInt:
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil || n < 0 || n > 1<<32-1 {
				errs = append(errs, fmt.Errorf("--%s: want a whole number from 0 to %d, got %q", FlagName(name), uint32(1<<32-1), v))
				continue
			}
			a.ints[name] = n
		}
	}
	if err := errors.Join(errs...); err != nil {
		return Args{}, err
	}
	from, to := a.times["from"], a.times["to"]
	if _, ok := a.times["from"]; ok && !from.Before(to) {
		return Args{}, fmt.Errorf("--from %s is not before --to %s: the window is empty", formatTime(from), formatTime(to))
	}
	if b, ok := a.times["baseline_from"]; ok && !b.Before(from) {
		return Args{}, fmt.Errorf("--baseline-from %s is not before --from %s: the baseline is empty", formatTime(b), formatTime(from))
	}
	return a, nil
}

// ParseTime reads a point in time: RFC 3339 (2026-11-01T10:00:00Z, any
// offset), a UTC date and time without offset (2026-11-01T10:00:00 or
// 2026-11-01 10:00:00), a UTC date (2026-11-01: its midnight), "now", or
// a time before now ("-90m", "-24h", "-7d"). The result is UTC,
// truncated to the millisecond: what both stores keep.
func ParseTime(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "now" {
		return now.UTC().Truncate(time.Millisecond), nil
	}
	if rest, ok := strings.CutPrefix(s, "-"); ok {
		d, err := parseAgo(rest)
		if err != nil {
			return time.Time{}, fmt.Errorf("%q: %w", s, err)
		}
		return now.Add(-d).UTC().Truncate(time.Millisecond), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02 15:04:05.999999999", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			if t.Year() < 1900 || t.Year() > 2299 {
				return time.Time{}, fmt.Errorf("%q: year out of range (1900-2299)", s)
			}
			return t.UTC().Truncate(time.Millisecond), nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not a time: want RFC 3339 (2026-11-01T10:00:00Z), a UTC date (2026-11-01), now, or a time before now (-24h, -7d)", s)
}

// parseAgo reads a duration with a day unit besides Go's: "7d", "36h".
func parseAgo(s string) (time.Duration, error) {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.Atoi(n)
		if err != nil || days < 0 || days > 100*365 {
			return 0, errors.New("want a whole number of days (-7d)")
		}
		return time.Duration(days) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 || d > 100*365*24*time.Hour {
		return 0, errors.New("want a duration before now (-90m, -24h, -7d)")
	}
	return d, nil
}

// FlagName is the command-line flag of parameter name: baseline_from is
// --baseline-from.
func FlagName(name string) string { return strings.ReplaceAll(name, "_", "-") }

func paramList(h Hunt) string {
	if len(h.Params) == 0 {
		return "none"
	}
	var names []string
	for _, p := range h.Params {
		names = append(names, "--"+FlagName(p.Name))
	}
	return strings.Join(names, ", ")
}
