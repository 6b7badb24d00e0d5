package schemas_test

import (
	"bytes"
	"encoding/json"
	"os"
	"testing"

	"github.com/crowsnest-siem/crowsnest/schemas"
)

func TestElasticsearchTemplatesEmbedded(t *testing.T) {
	for _, kind := range []string{"events", "alerts"} {
		comp, idx, err := schemas.ElasticsearchTemplates(kind)
		if err != nil {
			t.Fatalf("%s: %v", kind, err)
		}
		for name, got := range map[string][]byte{"component": comp, "index": idx} {
			want, err := os.ReadFile("elasticsearch/" + kind + "-" + name + "-template.json")
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s %s template: embedded bytes differ from the file", kind, name)
			}
			if !json.Valid(got) {
				t.Errorf("%s %s template: not JSON", kind, name)
			}
		}
	}
	if _, _, err := schemas.ElasticsearchTemplates("logs"); err == nil {
		t.Error("unknown kind accepted")
	}
}
