package elasticsearch

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/crowsnest-siem/crowsnest/schemas"
	"github.com/crowsnest-siem/crowsnest/sinks/sink"
)

// template is what the sink installs for one kind of document: the
// generated component template (mappings) and index template (data
// stream), named as the generated index template says.
type template struct {
	kind sink.Kind
	// prefix is the data stream name without the namespace
	// ("logs-crowsnest.events"); it also names the index template.
	prefix string
	// componentName is the component template the index template is
	// composed of ("logs-crowsnest.events@mappings").
	componentName string
	// schemaVersion is the crowsnest schema version the mappings carry.
	schemaVersion string
	component     []byte
	// index is the generated index template, parsed so the lifecycle can
	// be added to it.
	index map[string]any
	// mappings is the component's mappings, for updating an existing data
	// stream in place.
	mappings json.RawMessage
}

// loadTemplates reads the templates generated from schemas/fields.yml.
func loadTemplates() (map[sink.Kind]*template, error) {
	out := map[sink.Kind]*template{}
	for _, k := range sink.Kinds() {
		comp, idx, err := schemas.ElasticsearchTemplates(k.String())
		if err != nil {
			return nil, err
		}
		t := &template{kind: k, component: comp}
		if err := json.Unmarshal(idx, &t.index); err != nil {
			return nil, fmt.Errorf("%s index template: %w", k, err)
		}
		var shape struct {
			IndexPatterns []string `json:"index_patterns"`
			ComposedOf    []string `json:"composed_of"`
		}
		if err := json.Unmarshal(idx, &shape); err != nil {
			return nil, fmt.Errorf("%s index template: %w", k, err)
		}
		if len(shape.IndexPatterns) != 1 || !strings.HasSuffix(shape.IndexPatterns[0], "-*") || len(shape.ComposedOf) != 1 {
			return nil, fmt.Errorf("%s index template: want one index pattern <prefix>-* and one component, got %v and %v", k, shape.IndexPatterns, shape.ComposedOf)
		}
		t.prefix = strings.TrimSuffix(shape.IndexPatterns[0], "-*")
		t.componentName = shape.ComposedOf[0]
		var c struct {
			Meta struct {
				SchemaVersion string `json:"crowsnest_schema_version"`
			} `json:"_meta"`
			Template struct {
				Mappings json.RawMessage `json:"mappings"`
			} `json:"template"`
		}
		if err := json.Unmarshal(comp, &c); err != nil {
			return nil, fmt.Errorf("%s component template: %w", k, err)
		}
		if c.Meta.SchemaVersion == "" || len(c.Template.Mappings) == 0 {
			return nil, fmt.Errorf("%s component template: no schema version or no mappings", k)
		}
		t.schemaVersion, t.mappings = c.Meta.SchemaVersion, c.Template.Mappings
		out[k] = t
	}
	return out, nil
}

// lifecycle says how the data streams' data ages out.
type lifecycle struct {
	// ilmPolicy names the ILM policy the backing indices follow, or "".
	ilmPolicy string
	// retention is the data stream lifecycle's data_retention, or "" for
	// none (the server lacks it, or data is kept forever).
	retention string
}

// indexTemplateBody returns the index template with the lifecycle added.
func (t *template) indexTemplateBody(lc lifecycle) ([]byte, error) {
	// A shallow copy of the top level and of "template": the parsed
	// generated template stays as generated.
	idx := make(map[string]any, len(t.index)+1)
	for k, v := range t.index {
		idx[k] = v
	}
	tmpl := map[string]any{}
	if m, ok := t.index["template"].(map[string]any); ok {
		for k, v := range m {
			tmpl[k] = v
		}
	}
	switch {
	case lc.ilmPolicy != "":
		settings := map[string]any{}
		if s, ok := tmpl["settings"].(map[string]any); ok {
			for k, v := range s {
				settings[k] = v
			}
		}
		settings["index.lifecycle.name"] = lc.ilmPolicy
		tmpl["settings"] = settings
	case lc.retention != "":
		tmpl["lifecycle"] = map[string]any{"data_retention": lc.retention}
	}
	idx["template"] = tmpl
	meta := map[string]any{}
	if m, ok := t.index["_meta"].(map[string]any); ok {
		for k, v := range m {
			meta[k] = v
		}
	}
	meta["managed_by"] = "crowsnest"
	idx["_meta"] = meta
	return json.Marshal(idx)
}

// newerVersion reports whether dotted version a is newer than b ("1.10.0" >
// "1.9.3"); a part that is not a number compares as text.
func newerVersion(a, b string) bool {
	pa, pb := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < max(len(pa), len(pb)); i++ {
		var x, y string
		if i < len(pa) {
			x = pa[i]
		}
		if i < len(pb) {
			y = pb[i]
		}
		if x == y {
			continue
		}
		if len(x) != len(y) && isDigits(x) && isDigits(y) {
			return len(x) > len(y)
		}
		return x > y
	}
	return false
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}
