package sigma

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// A Sigma string is literal text with two wildcards: '*' (any run of
// characters) and '?' (one character). A backslash escapes '*', '?' and
// itself; before any other character it is a literal backslash (so Windows
// paths need no doubling).

type pieceKind uint8

const (
	pieceLit pieceKind = iota
	pieceStar
	pieceOne
)

type piece struct {
	kind pieceKind
	lit  string
}

// sigmaString is a parsed Sigma string.
type sigmaString []piece

func parseSigmaString(s string) sigmaString {
	var out sigmaString
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			out = append(out, piece{kind: pieceLit, lit: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '\\':
			if i+1 < len(s) && (s[i+1] == '*' || s[i+1] == '?' || s[i+1] == '\\') {
				lit.WriteByte(s[i+1])
				i++
				continue
			}
			lit.WriteByte(c)
		case '*':
			flush()
			if len(out) == 0 || out[len(out)-1].kind != pieceStar {
				out = append(out, piece{kind: pieceStar})
			}
		case '?':
			flush()
			out = append(out, piece{kind: pieceOne})
		default:
			lit.WriteByte(c)
		}
	}
	flush()
	return out
}

// literal returns a plain string as a Sigma string with no wildcards.
func literal(s string) sigmaString {
	if s == "" {
		return nil
	}
	return sigmaString{{kind: pieceLit, lit: s}}
}

func (s sigmaString) plain() (string, bool) {
	switch len(s) {
	case 0:
		return "", true
	case 1:
		if s[0].kind == pieceLit {
			return s[0].lit, true
		}
	}
	return "", false
}

func (s sigmaString) hasWildcards() bool {
	for _, p := range s {
		if p.kind != pieceLit {
			return true
		}
	}
	return false
}

func (s sigmaString) withStar(front, back bool) sigmaString {
	out := make(sigmaString, 0, len(s)+2)
	if front && (len(s) == 0 || s[0].kind != pieceStar) {
		out = append(out, piece{kind: pieceStar})
	}
	out = append(out, s...)
	if back && (len(out) == 0 || out[len(out)-1].kind != pieceStar) {
		out = append(out, piece{kind: pieceStar})
	}
	return out
}

// String writes the Sigma string back with escapes, for messages.
func (s sigmaString) String() string {
	var b strings.Builder
	for _, p := range s {
		switch p.kind {
		case pieceStar:
			b.WriteByte('*')
		case pieceOne:
			b.WriteByte('?')
		default:
			for i := 0; i < len(p.lit); i++ {
				if c := p.lit[i]; c == '*' || c == '?' || c == '\\' {
					b.WriteByte('\\')
				}
				b.WriteByte(p.lit[i])
			}
		}
	}
	return b.String()
}

type strShape uint8

const (
	shapeExact strShape = iota
	shapePrefix
	shapeSuffix
	shapeContains
	shapeAny
	shapeSegments
	shapeGlob
)

// strMatcher matches a string against one Sigma string, case-insensitively
// unless cased. The common shapes (exact, prefix, suffix, contains) are
// byte loops over a pre-lowered literal; the rest is a wildcard walk.
type strMatcher struct {
	shape strShape
	fold  bool
	ascii bool   // lit is ASCII, so byte-wise folding is exact
	lit   string // lowered when fold
	glob  []globRune
	// segments: a pattern of literals and stars only (no '?'), matched
	// by finding each literal in turn; anchored at the ends without a star.
	segs             []string
	anchorL, anchorR bool
}

type globRune struct {
	kind pieceKind
	r    rune
}

func newStrMatcher(s sigmaString, cased bool) strMatcher {
	m := strMatcher{fold: !cased}
	pick := func(shape strShape, lit string) strMatcher {
		m.shape, m.lit, m.ascii = shape, lit, isASCII(lit)
		if m.fold {
			m.lit = lowerFold(lit)
		}
		return m
	}
	switch {
	case len(s) == 0:
		return pick(shapeExact, "")
	case len(s) == 1 && s[0].kind == pieceLit:
		return pick(shapeExact, s[0].lit)
	case len(s) == 1 && s[0].kind == pieceStar:
		m.shape = shapeAny
		return m
	case len(s) == 2 && s[0].kind == pieceLit && s[1].kind == pieceStar:
		return pick(shapePrefix, s[0].lit)
	case len(s) == 2 && s[0].kind == pieceStar && s[1].kind == pieceLit:
		return pick(shapeSuffix, s[1].lit)
	case len(s) == 3 && s[0].kind == pieceStar && s[1].kind == pieceLit && s[2].kind == pieceStar:
		return pick(shapeContains, s[1].lit)
	}
	if segs, l, r, ok := starSegments(s); ok && (!m.fold || isASCII(strings.Join(segs, ""))) {
		m.shape, m.segs, m.anchorL, m.anchorR = shapeSegments, segs, l, r
		m.ascii = isASCII(strings.Join(segs, ""))
		if m.fold {
			for i := range m.segs {
				m.segs[i] = asciiLower(m.segs[i])
			}
		}
		return m
	}
	m.shape = shapeGlob
	for _, p := range s {
		switch p.kind {
		case pieceLit:
			for _, r := range p.lit {
				if m.fold {
					r = unicode.ToLower(r)
				}
				m.glob = append(m.glob, globRune{kind: pieceLit, r: r})
			}
		default:
			m.glob = append(m.glob, globRune{kind: p.kind})
		}
	}
	return m
}

func (m *strMatcher) match(s string) bool {
	switch m.shape {
	case shapeExact:
		if !m.fold {
			return s == m.lit
		}
		if m.ascii {
			return len(s) == len(m.lit) && hasPrefixFoldASCII(s, m.lit)
		}
		return strings.EqualFold(s, m.lit)
	case shapeAny:
		return true
	case shapePrefix:
		if !m.fold {
			return strings.HasPrefix(s, m.lit)
		}
		if m.ascii {
			return hasPrefixFoldASCII(s, m.lit)
		}
		n, ok := foldPrefix(s, m.lit)
		return ok && n >= 0
	case shapeSuffix:
		if !m.fold {
			return strings.HasSuffix(s, m.lit)
		}
		if m.ascii {
			return len(s) >= len(m.lit) && hasPrefixFoldASCII(s[len(s)-len(m.lit):], m.lit)
		}
		for i := 0; i <= len(s); i++ {
			if i < len(s) && !utf8.RuneStart(s[i]) {
				continue
			}
			if n, ok := foldPrefix(s[i:], m.lit); ok && i+n == len(s) {
				return true
			}
		}
		return false
	case shapeContains:
		if !m.fold {
			return strings.Contains(s, m.lit)
		}
		if m.ascii {
			return indexFoldASCII(s, m.lit) >= 0
		}
		for i := 0; i <= len(s); i++ {
			if i < len(s) && !utf8.RuneStart(s[i]) {
				continue
			}
			if _, ok := foldPrefix(s[i:], m.lit); ok {
				return true
			}
		}
		return false
	}
	if m.shape == shapeSegments {
		return m.matchSegments(s)
	}
	return globRunes(m.glob, s, m.fold)
}

// starSegments splits a pattern without '?' into its literals.
func starSegments(s sigmaString) (segs []string, anchorL, anchorR bool, ok bool) {
	for _, p := range s {
		switch p.kind {
		case pieceOne:
			return nil, false, false, false
		case pieceLit:
			segs = append(segs, p.lit)
		}
	}
	anchorL = len(s) > 0 && s[0].kind == pieceLit
	anchorR = len(s) > 0 && s[len(s)-1].kind == pieceLit
	return segs, anchorL, anchorR, len(segs) > 0
}

func (m *strMatcher) index(s, lit string) int {
	if m.fold {
		return indexFoldASCII(s, lit)
	}
	return strings.Index(s, lit)
}

func (m *strMatcher) hasPrefix(s, lit string) bool {
	if m.fold {
		return hasPrefixFoldASCII(s, lit)
	}
	return strings.HasPrefix(s, lit)
}

// matchSegments: with stars only, taking each literal at its leftmost
// occurrence never loses a match, so one pass suffices.
func (m *strMatcher) matchSegments(s string) bool {
	segs := m.segs
	if m.anchorL {
		if !m.hasPrefix(s, segs[0]) {
			return false
		}
		s = s[len(segs[0]):]
		segs = segs[1:]
	}
	var last string
	if m.anchorR {
		if len(segs) == 0 {
			return s == "" // a single literal was anchored at both ends
		}
		last = segs[len(segs)-1]
		segs = segs[:len(segs)-1]
	}
	for _, lit := range segs {
		i := m.index(s, lit)
		if i < 0 {
			return false
		}
		s = s[i+len(lit):]
	}
	if m.anchorR {
		return len(s) >= len(last) && m.hasPrefix(s[len(s)-len(last):], last)
	}
	return true
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// lowerFold lowers s for case-insensitive comparison.
func lowerFold(s string) string {
	if isASCII(s) {
		return asciiLower(s)
	}
	return strings.ToLower(s)
}

func asciiLower(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if b[j] >= 'A' && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

func lowerByte(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// hasPrefixFoldASCII reports whether s starts with lit (lower-case ASCII),
// ignoring ASCII case.
func hasPrefixFoldASCII(s, lit string) bool {
	if len(s) < len(lit) {
		return false
	}
	for i := 0; i < len(lit); i++ {
		if lowerByte(s[i]) != lit[i] {
			return false
		}
	}
	return true
}

// indexFoldASCII finds lit (lower-case ASCII) in s ignoring ASCII case. It
// jumps between candidate first bytes with IndexByte (vectorized), so a long
// text without the first letter costs little.
func indexFoldASCII(s, lit string) int {
	n := len(lit)
	if n == 0 {
		return 0
	}
	limit := len(s) - n + 1
	if limit <= 0 {
		return -1
	}
	first := lit[0]
	upper := first
	if first >= 'a' && first <= 'z' {
		upper = first - ('a' - 'A')
	}
	nextLo, nextUp := -1, -1
	if upper == first {
		nextUp = limit // one case only
	}
	for i := 0; i < limit; {
		if nextLo < i {
			if j := strings.IndexByte(s[i:limit], first); j < 0 {
				nextLo = limit
			} else {
				nextLo = i + j
			}
		}
		if nextUp < i {
			if j := strings.IndexByte(s[i:limit], upper); j < 0 {
				nextUp = limit
			} else {
				nextUp = i + j
			}
		}
		p := min(nextLo, nextUp)
		if p >= limit {
			return -1
		}
		if hasPrefixFoldASCII(s[p+1:], lit[1:]) {
			return p
		}
		i = p + 1
	}
	return -1
}

// foldPrefix reports whether s starts with p under Unicode simple folding,
// and how many bytes of s that prefix spans.
func foldPrefix(s, p string) (int, bool) {
	i := 0
	for _, pr := range p {
		if i >= len(s) {
			return 0, false
		}
		sr, size := utf8.DecodeRuneInString(s[i:])
		if sr != pr && unicode.ToLower(sr) != unicode.ToLower(pr) && !equalFoldRune(sr, pr) {
			return 0, false
		}
		i += size
	}
	return i, true
}

func equalFoldRune(a, b rune) bool {
	for r := unicode.SimpleFold(a); r != a; r = unicode.SimpleFold(r) {
		if r == b {
			return true
		}
	}
	return false
}

// globRunes is the iterative wildcard match ('*' any run, '?' one rune);
// it backtracks to the last star only, so it runs in O(len(s)·len(p)).
func globRunes(p []globRune, s string, fold bool) bool {
	pi, si := 0, 0
	starP, starS := -1, 0
	for si < len(s) {
		r, size := utf8.DecodeRuneInString(s[si:])
		if pi < len(p) {
			switch p[pi].kind {
			case pieceStar:
				starP, starS = pi, si
				pi++
				continue
			case pieceOne:
				pi++
				si += size
				continue
			default:
				pr := p[pi].r
				if r == pr || fold && (unicode.ToLower(r) == pr || equalFoldRune(r, pr)) {
					pi++
					si += size
					continue
				}
			}
		}
		if starP < 0 {
			return false
		}
		_, sz := utf8.DecodeRuneInString(s[starS:])
		starS += sz
		si = starS
		pi = starP + 1
	}
	for pi < len(p) && p[pi].kind == pieceStar {
		pi++
	}
	return pi == len(p)
}
