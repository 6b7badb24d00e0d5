package normalize

// checkJSON verifies, in one pass and without recursion, that data is exactly
// one JSON value (RFC 8259 grammar; UTF-8 is checked separately) and that no
// object or array nests deeper than maxDepth (≤ maxDepthCeiling). It runs
// before gjson, which does not validate and recurses per nesting level, so a
// depth bomb costs one bounded scan. On failure it returns the reason and the
// byte offset where the scan stopped.
func checkJSON[T string | []byte](data T, maxDepth int) (Reason, int) {
	// One bit per open container: 1 object, 0 array.
	var stack [maxDepthCeiling / 64]uint64
	depth := 0
	n := len(data)
	i := skipSpace(data, 0)
	for {
		// A value starts at i.
		if i >= n {
			return ReasonInvalidJSON, i
		}
		switch c := data[i]; {
		case c == '{' || c == '[':
			if depth >= maxDepth {
				return ReasonTooDeep, i
			}
			word, bit := depth/64, uint64(1)<<(depth%64)
			if c == '{' {
				stack[word] |= bit
			} else {
				stack[word] &^= bit
			}
			depth++
			i = skipSpace(data, i+1)
			if i < n && (c == '{' && data[i] == '}' || c == '[' && data[i] == ']') {
				depth--
				i++
				break // to "after a value"
			}
			if c == '{' {
				var ok bool
				if i, ok = scanKey(data, i); !ok {
					return ReasonInvalidJSON, i
				}
			}
			continue // a value starts at i
		case c == '"':
			var ok bool
			if i, ok = scanString(data, i); !ok {
				return ReasonInvalidJSON, i
			}
		case c == 't':
			if !hasLiteral(data, i, "true") {
				return ReasonInvalidJSON, i
			}
			i += 4
		case c == 'f':
			if !hasLiteral(data, i, "false") {
				return ReasonInvalidJSON, i
			}
			i += 5
		case c == 'n':
			if !hasLiteral(data, i, "null") {
				return ReasonInvalidJSON, i
			}
			i += 4
		case c == '-' || c >= '0' && c <= '9':
			var ok bool
			if i, ok = scanNumber(data, i); !ok {
				return ReasonInvalidJSON, i
			}
		default:
			return ReasonInvalidJSON, i
		}
		// After a value: close containers, or find the next element.
		for {
			i = skipSpace(data, i)
			if depth == 0 {
				if i != n {
					return ReasonInvalidJSON, i
				}
				return "", 0
			}
			if i >= n {
				return ReasonInvalidJSON, i
			}
			inObject := stack[(depth-1)/64]&(uint64(1)<<((depth-1)%64)) != 0
			c := data[i]
			if c == ',' {
				i = skipSpace(data, i+1)
				if inObject {
					var ok bool
					if i, ok = scanKey(data, i); !ok {
						return ReasonInvalidJSON, i
					}
				}
				break // a value starts at i
			}
			if inObject && c == '}' || !inObject && c == ']' {
				depth--
				i++
				continue
			}
			return ReasonInvalidJSON, i
		}
	}
}

func skipSpace[T string | []byte](data T, i int) int {
	for i < len(data) {
		switch data[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// scanKey reads `"key" :` and the space after it.
func scanKey[T string | []byte](data T, i int) (int, bool) {
	if i >= len(data) || data[i] != '"' {
		return i, false
	}
	i, ok := scanString(data, i)
	if !ok {
		return i, false
	}
	i = skipSpace(data, i)
	if i >= len(data) || data[i] != ':' {
		return i, false
	}
	return skipSpace(data, i+1), true
}

// plainStringByte marks the bytes a JSON string holds without ceremony:
// everything but '"', '\\' and control characters. A read-only table.
var plainStringByte = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// scanString reads the string starting at data[i] == '"' and returns the
// index after its closing quote.
func scanString[T string | []byte](data T, i int) (int, bool) {
	i++
	for i < len(data) {
		// Most bytes are plain: skip them eight at a time while no byte of
		// the word is '"', '\\' or a control character, then one at a time.
		for i+8 <= len(data) && plainWord(load64(data, i)) {
			i += 8
		}
		for i < len(data) && plainStringByte[data[i]] {
			i++
		}
		if i >= len(data) {
			break
		}
		c := data[i]
		switch {
		case c == '"':
			return i + 1, true
		case c == '\\':
			if i+1 >= len(data) {
				return i, false
			}
			switch data[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(data) || !isHex(data[i+2]) || !isHex(data[i+3]) || !isHex(data[i+4]) || !isHex(data[i+5]) {
					return i, false
				}
				i += 6
			default:
				return i, false
			}
		case c < 0x20:
			return i, false
		default:
			i++
		}
	}
	return i, false
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func hasLiteral[T string | []byte](data T, i int, lit string) bool {
	if len(data)-i < len(lit) {
		return false
	}
	for j := 0; j < len(lit); j++ {
		if data[i+j] != lit[j] {
			return false
		}
	}
	return true
}

// scanNumber reads -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func scanNumber[T string | []byte](data T, i int) (int, bool) {
	n := len(data)
	if data[i] == '-' {
		i++
	}
	switch {
	case i < n && data[i] == '0':
		i++
	case i < n && data[i] >= '1' && data[i] <= '9':
		i = skipDigits(data, i+1)
	default:
		return i, false
	}
	if i < n && data[i] == '.' {
		j := skipDigits(data, i+1)
		if j == i+1 {
			return j, false
		}
		i = j
	}
	if i < n && (data[i] == 'e' || data[i] == 'E') {
		i++
		if i < n && (data[i] == '+' || data[i] == '-') {
			i++
		}
		j := skipDigits(data, i)
		if j == i {
			return j, false
		}
		i = j
	}
	return i, true
}

func skipDigits[T string | []byte](data T, i int) int {
	for i < len(data) && data[i] >= '0' && data[i] <= '9' {
		i++
	}
	return i
}

// load64 reads 8 bytes little-endian; the compiler fuses the byte loads into
// one for both strings and byte slices.
func load64[T string | []byte](data T, i int) uint64 {
	_ = data[i+7]
	return uint64(data[i]) | uint64(data[i+1])<<8 | uint64(data[i+2])<<16 | uint64(data[i+3])<<24 |
		uint64(data[i+4])<<32 | uint64(data[i+5])<<40 | uint64(data[i+6])<<48 | uint64(data[i+7])<<56
}

// plainWord reports whether none of w's bytes is '"', '\\' or below 0x20
// (the SWAR tests of "Bit Twiddling Hacks": a byte is zero, or less than n,
// when its high bit survives (b - n) & ^b).
func plainWord(w uint64) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	hasZero := func(v uint64) uint64 { return (v - ones) & ^v & highs }
	less := (w - ones*0x20) & ^w & highs
	quote := hasZero(w ^ (ones * '"'))
	backslash := hasZero(w ^ (ones * '\\'))
	return less|quote|backslash == 0
}
