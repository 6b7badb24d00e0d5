package sigma

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/crowsnest-siem/crowsnest/schemas"
)

//go:embed mapping.yml
var defaultMapping []byte

// Mapping says which events a Sigma logsource means and where Sigma field
// names live in crowsnest events. It is read-only once built.
type Mapping struct {
	Keywords   []string           `yaml:"keywords"`
	Logsources []LogsourceMapping `yaml:"logsources"`
}

// LogsourceMapping is one logsource entry of the mapping.
type LogsourceMapping struct {
	Name     string                  `yaml:"name"`
	Match    []LogsourceMatch        `yaml:"match"`
	Sources  []string                `yaml:"sources"`
	Where    yaml.Node               `yaml:"where"`
	Fields   map[string]FieldMapping `yaml:"fields"`
	Fallback []string                `yaml:"fallback"`
	Keywords []string                `yaml:"keywords"`

	where node // compiled Where; nil when there is none
}

// LogsourceMatch is one category/product/service combination.
type LogsourceMatch struct {
	Category string `yaml:"category"`
	Product  string `yaml:"product"`
	Service  string `yaml:"service"`
}

// FieldMapping is where one Sigma field name lives: Field (a crowsnest
// field name, possibly with a map key or JSON path below it), optionally
// one element of an array (Index), and a rewrite of the rule's values.
type FieldMapping struct {
	Field  string            `yaml:"field"`
	Index  *int              `yaml:"index"`
	Values map[string]string `yaml:"values"`
	// Or names more text fields the value may be in: the rule's item holds
	// when Field or any of them holds it. For a Sigma name that means
	// different things in different records of one coalesced event (auditd
	// a0: EXECVE's argv[0], or a SYSCALL's first argument).
	Or []string `yaml:"or"`
}

// UnmarshalYAML accepts a bare field name as well as the long form.
func (f *FieldMapping) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		f.Field = n.Value
		return nil
	}
	// Node.Decode ignores the decoder's KnownFields: a misspelt key (idx for
	// index) would quietly map the whole array.
	if n.Kind == yaml.MappingNode {
		for i := 0; i < len(n.Content); i += 2 {
			switch k := n.Content[i].Value; k {
			case "field", "index", "values", "or":
			default:
				return fmt.Errorf("line %d: field %s not found in type sigma.FieldMapping", n.Content[i].Line, k)
			}
		}
	}
	type plain FieldMapping
	var p plain
	if err := n.Decode(&p); err != nil {
		return err
	}
	*f = FieldMapping(p)
	return nil
}

// DefaultMapping returns the mapping embedded in crowsnest (mapping.yml).
func DefaultMapping() (*Mapping, error) {
	return ParseMapping(defaultMapping)
}

// ParseMapping reads and checks a mapping file: every target field must
// exist in the schema, and every where clause must compile.
func ParseMapping(data []byte) (*Mapping, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var m Mapping
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("decode mapping: %w", err)
	}
	var errs []error
	for i := range m.Logsources {
		ls := &m.Logsources[i]
		at := fmt.Sprintf("logsources[%d] %s", i, ls.Name)
		if len(ls.Match) == 0 || len(ls.Sources) == 0 {
			errs = append(errs, fmt.Errorf("%s: match and sources are required", at))
		}
		for name, f := range ls.Fields {
			if _, err := mapped(name, f); err != nil {
				errs = append(errs, fmt.Errorf("%s: field %s: %w", at, name, err))
			}
		}
		for _, kw := range ls.Keywords {
			if _, err := resolveTarget(kw, kw); err != nil {
				errs = append(errs, fmt.Errorf("%s: keyword field: %w", at, err))
			}
		}
		if ls.Where.Kind != 0 {
			if ls.Where.Kind != yaml.MappingNode {
				errs = append(errs, fmt.Errorf("%s: where must be a map", at))
				continue
			}
			var count int
			alt, err := parseMap(&ls.Where, &count)
			if err == nil {
				ls.where, err = compileAlternative(alt, &compiler{resolve: resolveECS})
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: where: %w", at, err))
			}
		}
	}
	for _, kw := range m.Keywords {
		if _, err := resolveTarget(kw, kw); err != nil {
			errs = append(errs, fmt.Errorf("keywords: %w", err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return &m, nil
}

// Logsource finds the entry of a rule's logsource: the one whose match
// names exactly the keys the rule sets, with equal values (case-insensitive).
func (m *Mapping) Logsource(l Logsource) (*LogsourceMapping, bool) {
	for i := range m.Logsources {
		for _, lm := range m.Logsources[i].Match {
			if strings.EqualFold(lm.Category, l.Category) && strings.EqualFold(lm.Product, l.Product) && strings.EqualFold(lm.Service, l.Service) {
				return &m.Logsources[i], true
			}
		}
	}
	return nil, false
}

func (ls *LogsourceMapping) keywordFields(m *Mapping) []string {
	if len(ls.Keywords) > 0 {
		return ls.Keywords
	}
	return m.Keywords
}

// resolve finds where a rule's field name lives for this logsource.
func (ls *LogsourceMapping) resolve(name string) (accessor, error) {
	if f, ok := ls.Fields[name]; ok {
		return mapped(name, f)
	}
	// Sigma field names are case-insensitive in practice (Image, image).
	for k, f := range ls.Fields {
		if strings.EqualFold(k, name) && f.Index == nil && f.Values == nil {
			return mapped(name, f)
		}
	}
	a, err := resolveECS(name)
	if err == nil {
		return a, nil
	}
	var ue *UnsupportedError
	if !errors.As(err, &ue) {
		return accessor{}, err // a real field used wrongly
	}
	for _, prefix := range ls.Fallback {
		if a, err := resolveECS(prefix + name); err == nil {
			a.name = name
			return a, nil
		}
	}
	return accessor{}, unsupported("field:"+name, "no mapping for field %q in logsource %s", name, ls.Name)
}

// mapped resolves the rule's field name through a mapping entry f.
func mapped(name string, f FieldMapping) (accessor, error) {
	a, err := resolveTarget(name, f.Field)
	if err != nil {
		return accessor{}, err
	}
	if f.Index != nil {
		if a.g.Kind != schemas.FieldStrings || a.key != "" || a.path != nil {
			return accessor{}, fmt.Errorf("field %s: index applies to arrays of strings", name)
		}
		a.index = *f.Index
	}
	a.values = f.Values
	for _, t := range f.Or {
		alt, err := resolveTarget(name, t)
		if err != nil {
			return accessor{}, fmt.Errorf("or: %w", err)
		}
		if !a.isStringy() || !alt.isStringy() || alt.g.Kind == schemas.FieldJSON {
			return accessor{}, fmt.Errorf("field %s: or joins text fields only (%s, %s)", name, a.g.Name, alt.g.Name)
		}
		a.alt = append(a.alt, alt)
	}
	return a, nil
}

// resolveTarget resolves a mapping's target; name is the rule's field.
func resolveTarget(name, target string) (accessor, error) {
	a, err := resolveECS(target)
	if err != nil {
		return accessor{}, err
	}
	a.name = name
	return a, nil
}

// resolveECS resolves a crowsnest field name: a registry field, or a key
// below a map field, or a path below a JSON field.
func resolveECS(name string) (accessor, error) {
	if g, ok := schemas.EventField(name); ok {
		return accessor{name: name, g: g, index: -1}, nil
	}
	for i := len(name) - 1; i > 0; i-- {
		if name[i] != '.' {
			continue
		}
		g, ok := schemas.EventField(name[:i])
		if !ok {
			continue
		}
		rest := name[i+1:]
		switch g.Kind {
		case schemas.FieldMap:
			if rest == "" {
				break
			}
			return accessor{name: name, g: g, key: rest, index: -1}, nil
		case schemas.FieldJSON:
			path := strings.Split(rest, ".")
			for _, p := range path {
				if p == "" {
					return accessor{}, fmt.Errorf("field %q: empty path segment", name)
				}
			}
			return accessor{name: name, g: g, path: path, index: -1}, nil
		}
		return accessor{}, fmt.Errorf("field %q: %s is a %s field, not a map or JSON object", name, name[:i], g.Kind)
	}
	return accessor{}, unsupported("field:"+name, "no field %q in the schema", name)
}
