package sigma

import (
	"encoding/base64"
	"regexp"
	"strings"
	"unicode/utf16"
)

// maxVariants bounds how many strings one value may expand into (windash
// permutations, placeholders), so a rule cannot blow up memory.
const maxVariants = 4096

// windashChars are the characters the windash modifier puts in place of a
// leading dash or slash: Windows programs accept each as an option prefix.
var windashChars = []string{"-", "/", "\u2013", "\u2014", "\u2015"}

// windashRe finds an option prefix: '-' or '/' at a word start, as pySigma does.
var windashRe = regexp.MustCompile(`(^|[^\w])([-/])(\w)`)

// windash returns every permutation of the option prefixes in s.
func windash(s string) ([]string, error) {
	locs := windashRe.FindAllStringSubmatchIndex(s, -1)
	if len(locs) == 0 {
		return []string{s}, nil
	}
	var positions []int
	for _, l := range locs {
		positions = append(positions, l[4]) // start of group 2
	}
	n := 1
	for range positions {
		n *= len(windashChars)
		if n > maxVariants {
			return nil, unsupported("modifier:windash", "value %q has too many option prefixes to expand", s)
		}
	}
	out := []string{""}
	prev := 0
	for _, p := range positions {
		var next []string
		for _, o := range out {
			for _, c := range windashChars {
				next = append(next, o+s[prev:p]+c)
			}
		}
		out = next
		prev = p + 1
	}
	for i := range out {
		out[i] += s[prev:]
	}
	return out, nil
}

// encodeUTF16 encodes s as UTF-16 in the given byte order, as a byte string.
func encodeUTF16(s string, bigEndian, bom bool) string {
	var b strings.Builder
	if bom {
		if bigEndian {
			b.WriteString("\xfe\xff")
		} else {
			b.WriteString("\xff\xfe")
		}
	}
	for _, u := range utf16.Encode([]rune(s)) {
		if bigEndian {
			b.WriteByte(byte(u >> 8))
			b.WriteByte(byte(u))
		} else {
			b.WriteByte(byte(u))
			b.WriteByte(byte(u >> 8))
		}
	}
	return b.String()
}

// base64Offsets returns the three encodings of s at the byte offsets 0, 1
// and 2 of a longer base64 stream, each cut to the characters that do not
// depend on the unknown surrounding bytes (the base64offset modifier).
func base64Offsets(s string) []string {
	start := [3]int{0, 2, 3}
	out := make([]string, 0, 3)
	for i := 0; i < 3; i++ {
		enc := base64.StdEncoding.EncodeToString([]byte(strings.Repeat(" ", i) + s))
		// The last characters (and padding) depend on the bytes after s.
		end := len(enc)
		switch (len(s) + i) % 3 {
		case 1:
			end -= 3
		case 2:
			end -= 2
		}
		if end <= start[i] {
			continue
		}
		out = append(out, enc[start[i]:end])
	}
	return out
}

// expandPlaceholders replaces each %name% in s with each configured value.
func expandPlaceholders(s string, placeholders map[string][]string) ([]string, error) {
	out := []string{s}
	for {
		i := strings.IndexByte(out[0], '%')
		if i < 0 {
			return out, nil
		}
		j := strings.IndexByte(out[0][i+1:], '%')
		if j < 0 {
			return out, nil
		}
		name := out[0][i+1 : i+1+j]
		vals, ok := placeholders[name]
		if !ok || len(vals) == 0 {
			return nil, unsupported("modifier:expand", "placeholder %%%s%% is not configured", name)
		}
		var next []string
		for _, o := range out {
			for _, v := range vals {
				next = append(next, strings.Replace(o, "%"+name+"%", v, 1))
			}
		}
		if len(next) > maxVariants {
			return nil, unsupported("modifier:expand", "placeholder %%%s%% expands to more than %d values", name, maxVariants)
		}
		out = next
	}
}
