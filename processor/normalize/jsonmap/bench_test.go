package jsonmap_test

import (
	"testing"

	"github.com/crowsnest-siem/crowsnest/processor/normalize/internal/golden"
	"github.com/crowsnest-siem/crowsnest/processor/normalize/jsonmap"
)

// BenchmarkJSON: a 20-field mapping (the webapp mapping of
// testdata/mappings.yaml: nested objects, an array index, a gjson query, a
// kept object) plus the AppendJSON encode.
func BenchmarkJSON(b *testing.B) {
	n := newNormalizer(b)
	b.Run("login_success", func(b *testing.B) {
		golden.Bench(b, n, jsonmap.Source, golden.Input(b, "login_success"))
	})
}
