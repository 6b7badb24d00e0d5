package query

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

var testNow = time.Date(2026, 11, 27, 3, 4, 5, 678_900_000, time.UTC)

func TestParseTime(t *testing.T) {
	for _, tc := range []struct {
		in, want string // want "" means an error
	}{
		{"2026-11-01T10:00:00Z", "2026-11-01T10:00:00.000Z"},
		{"2026-11-01T12:00:00+02:00", "2026-11-01T10:00:00.000Z"},
		{"2026-11-01T10:00:00.123456Z", "2026-11-01T10:00:00.123Z"},
		{"2026-11-01T10:00:00", "2026-11-01T10:00:00.000Z"},
		{"2026-11-01 10:00:00.5", "2026-11-01T10:00:00.500Z"},
		{"2026-11-01", "2026-11-01T00:00:00.000Z"},
		{" now ", "2026-11-27T03:04:05.678Z"},
		{"-24h", "2026-11-26T03:04:05.678Z"},
		{"-90m", "2026-11-27T01:34:05.678Z"},
		{"-7d", "2026-11-20T03:04:05.678Z"},
		{"2026-13-01", ""},
		{"yesterday", ""},
		{"-7w", ""},
		{"--1h", ""},
		{"-999999d", ""},
		{"0001-01-01", ""},
		{"", ""},
	} {
		got, err := ParseTime(tc.in, testNow)
		switch {
		case tc.want == "" && err == nil:
			t.Errorf("ParseTime(%q) = %s, want an error", tc.in, got)
		case tc.want != "" && err != nil:
			t.Errorf("ParseTime(%q): %v", tc.in, err)
		case tc.want != "" && formatTime(got) != tc.want:
			t.Errorf("ParseTime(%q) = %s, want %s", tc.in, formatTime(got), tc.want)
		}
	}
}

func FuzzParseTime(f *testing.F) {
	for _, s := range []string{"2026-11-01T10:00:00Z", "2026-11-01", "now", "-24h", "-7d", "-1.5h", "2026-11-01 10:00:00.999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseTime(s, testNow)
		if err != nil {
			return
		}
		if got.Location() != time.UTC || got.Nanosecond()%int(time.Millisecond) != 0 {
			t.Fatalf("ParseTime(%q) = %v: not UTC milliseconds", s, got)
		}
		if again, err := ParseTime(formatTime(got), testNow); err != nil || !again.Equal(got) {
			t.Fatalf("ParseTime(%q) = %s does not read back: %v, %v", s, formatTime(got), again, err)
		}
	})
}

func TestResolve(t *testing.T) {
	cat, err := Catalog()
	if err != nil {
		t.Fatal(err)
	}
	find := func(name string) Hunt {
		h, err := Find(cat, name)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	for _, tc := range []struct {
		name string
		hunt string
		raw  map[string]string
		want map[string]string // parameter → value as text; nil means an error
		err  string
	}{
		{"defaults", "top_talkers_new_destinations", map[string]string{}, map[string]string{
			"to": "2026-11-27T03:04:05.678Z", "from": "2026-11-26T03:04:05.678Z", "baseline_from": "2026-11-19T03:04:05.678Z",
		}, ""},
		{"from given, to now", "privileged_workloads", map[string]string{"from": "2026-11-20"}, map[string]string{
			"from": "2026-11-20T00:00:00.000Z", "to": "2026-11-27T03:04:05.678Z",
		}, ""},
		{"to given, from a day before", "rbac_changes_by_user", map[string]string{"to": "2026-11-02", "user": "bob"}, map[string]string{
			"from": "2026-11-01T00:00:00.000Z", "to": "2026-11-02T00:00:00.000Z", "user": "bob",
		}, ""},
		{"user defaults to everyone", "rbac_changes_by_user", map[string]string{}, map[string]string{"user": ""}, ""},
		{"required", "exec_into_pod_timeline", map[string]string{}, nil, "--namespace is required"},
		{"unknown parameter", "exec_into_pod_timeline", map[string]string{"namespace": "a", "user": "x"}, nil, "--user: hunt exec_into_pod_timeline takes no such parameter"},
		{"bad time", "privileged_workloads", map[string]string{"from": "last tuesday"}, nil, `--from: "last tuesday" is not a time`},
		{"empty window", "privileged_workloads", map[string]string{"from": "2026-11-02", "to": "2026-11-02"}, nil, "is not before --to"},
		{"empty baseline", "top_talkers_new_destinations", map[string]string{"from": "-1h", "baseline_from": "-1h"}, nil, "the baseline is empty"},
		{"limit is Run's", "top_talkers_new_destinations", map[string]string{"limit": "5"}, nil, "--limit: hunt top_talkers_new_destinations takes no such parameter"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := Resolve(find(tc.hunt), tc.raw, testNow)
			if tc.want == nil {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for name, want := range tc.want {
				var got string
				if v, ok := a.times[name]; ok {
					got = formatTime(v)
				} else if v, ok := a.ints[name]; ok {
					got = strconv.FormatInt(v, 10)
				} else {
					got = a.strings[name]
				}
				if got != want {
					t.Errorf("%s = %q, want %q", name, got, want)
				}
			}
		})
	}
}
