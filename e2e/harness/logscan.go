package harness

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// LogScan is what a process's log says about its troubles: warnings and
// errors by message, and whether it panicked.
type LogScan struct {
	Warn, Error map[string]int // msg → lines
	// Panics are the lines starting a Go panic or fatal runtime error.
	Panics []string
}

var (
	levelRE = regexp.MustCompile(`\blevel=(WARN|ERROR)\b`)
	msgRE   = regexp.MustCompile(`\bmsg=("(?:[^"\\]|\\.)*"|\S+)`)
)

// ScanLog reads the log at path (text format, as the stages write it).
func ScanLog(path string) (LogScan, error) {
	s := LogScan{Warn: map[string]int{}, Error: map[string]int{}}
	err := scanLines(path, func(line []byte) {
		l := string(line)
		if strings.HasPrefix(l, "panic:") || strings.HasPrefix(l, "fatal error:") {
			s.Panics = append(s.Panics, l)
			return
		}
		m := levelRE.FindStringSubmatch(l)
		if m == nil {
			return
		}
		msg := "?"
		if mm := msgRE.FindStringSubmatch(l); mm != nil {
			msg = strings.Trim(mm[1], `"`)
		}
		if m[1] == "WARN" {
			s.Warn[msg]++
		} else {
			s.Error[msg]++
		}
	})
	return s, err
}

// String is a one-line summary: counts by level, the commonest messages.
func (s LogScan) String() string {
	return fmt.Sprintf("%d warnings%s, %d errors%s, %d panics", total(s.Warn), top(s.Warn), total(s.Error), top(s.Error), len(s.Panics))
}

func total(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// top lists the three commonest messages with their counts.
func top(m map[string]int) string {
	if len(m) == 0 {
		return ""
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int {
		if m[a] != m[b] {
			return m[b] - m[a]
		}
		return strings.Compare(a, b)
	})
	var parts []string
	for _, k := range keys[:min(3, len(keys))] {
		parts = append(parts, fmt.Sprintf("%q ×%d", k, m[k]))
	}
	return " (" + strings.Join(parts, ", ") + ")"
}
