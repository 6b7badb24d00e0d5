package schemas

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// appendStringByByte is appendString as it was before the eight-byte skip:
// the reference the faster one must match byte for byte.
func appendStringByByte(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

var appendStringCases = []string{
	"", "a", "plain ascii text longer than eight bytes",
	`{"kind":"Event","user":{"username":"a"}}`,
	"\x00\x01\x1f\x7f", "0123456\"", "01234567\"", "012345678\\", "\"\"\"\"\"\"\"\"\"",
	"<script>&amp;</script>", "abcdefg<hijklmn>opqrstu&",
	"é", "abcdefgé", "abcdefghé", "日本語のテキスト", "\u2028\u2029", "abcdefg\u2028hijklmn\u2029",
	"\xff", "abcdefg\xffhijklmn", "\xe2\x80", "abcdefgh\xe2\x80", "\xed\xa0\x80surrogate",
	"\t\n\r\b\f", strings.Repeat("x", 63) + "\n" + strings.Repeat("y", 65),
	// bytes just below and above each byte the skip looks for
	"\x1f\x20\x21\x22\x23\x25\x26\x27\x3b\x3c\x3d\x3e\x3f\x5b\x5c\x5d\x7e\x7f\x80",
}

func TestAppendStringMatchesByteByByte(t *testing.T) {
	for _, s := range appendStringCases {
		// every alignment of the interesting byte within a word
		for pad := range 9 {
			in := strings.Repeat("p", pad) + s
			got, want := appendString(nil, in), appendStringByByte(nil, in)
			if string(got) != string(want) {
				t.Errorf("appendString(%q) = %s, want %s", in, got, want)
			}
		}
	}
	// every single byte value in every position of a word
	for c := range 256 {
		for pos := range 8 {
			w := []byte("abcdefgh")
			w[pos] = byte(c)
			in := string(w) + string(w)
			if got, want := appendString(nil, in), appendStringByByte(nil, in); string(got) != string(want) {
				t.Errorf("appendString(%q) = %s, want %s", in, got, want)
			}
		}
	}
}

func FuzzAppendStringMatchesByteByByte(f *testing.F) {
	for _, s := range appendStringCases {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := appendString(nil, s), appendStringByByte(nil, s); string(got) != string(want) {
			t.Fatalf("appendString(%q) = %s, want %s", s, got, want)
		}
	})
}

// BenchmarkAppendString: an audit event's raw record, the longest string an
// event usually carries (event.original), about one '"' in ten bytes.
func BenchmarkAppendString(b *testing.B) {
	s := `{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"0b6a2f7e-4c1d-4e8a-9a55-7c2e1f3d9b10","stage":"ResponseComplete","requestURI":"/api/v1/namespaces/payments/pods/checkout-7d9f8b6c5-x2k4p","verb":"get","user":{"username":"alice@example.com","uid":"8a4f5c1e-2d3b-4c6a-9e8f-1a2b3c4d5e6f","groups":["developers","system:authenticated"]},"sourceIPs":["10.20.30.40","192.0.2.15"],"userAgent":"kubectl/v1.31.2 (linux/amd64) kubernetes/5864a46","objectRef":{"resource":"pods","namespace":"payments","name":"checkout-7d9f8b6c5-x2k4p","apiVersion":"v1"},"responseStatus":{"metadata":{},"code":200},"requestReceivedTimestamp":"2026-11-20T09:14:03.120311Z","stageTimestamp":"2026-11-20T09:14:03.124907Z"}`
	for _, fn := range []struct {
		name string
		f    func([]byte, string) []byte
	}{{"word-skip", appendString}, {"byte-by-byte", appendStringByByte}} {
		b.Run(fn.name, func(b *testing.B) {
			var buf []byte
			b.SetBytes(int64(len(s)))
			for b.Loop() {
				buf = fn.f(buf[:0], s)
			}
		})
	}
}

// The processor encodes every event into a reused buffer: an event whose maps
// fit the stack array must encode without allocating.
func TestAppendJSONDoesNotAllocate(t *testing.T) {
	ev := Event{Message: "m\"<é", Labels: map[string]string{}}
	for _, k := range []string{"k", "j", "i", "h", "g", "f", "e", "d", "c", "b", "a", "a.b/c"} {
		ev.Labels[k] = k + "\x01"
	}
	ev.Kubernetes.Audit.Annotations = ev.Labels
	buf := ev.AppendJSON(nil)
	if n := testing.AllocsPerRun(100, func() { buf = ev.AppendJSON(buf[:0]) }); n != 0 {
		t.Errorf("AppendJSON allocates %v times per event", n)
	}
}
