package sigma

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Rule is one Sigma rule as written: metadata, logsource and detection.
// A correlation rule has Correlation set and no Detection.
type Rule struct {
	Title          string
	ID             string
	Name           string
	Status         string
	Description    string
	Author         string
	Level          string
	Date           string
	Modified       string
	References     []string
	Tags           []string
	FalsePositives []string
	Logsource      Logsource
	Detection      Detection
	Correlation    *Correlation
	// Line is where the rule's document starts in its file (1-based).
	Line int
}

// Logsource says which events a rule is about.
type Logsource struct {
	Category   string
	Product    string
	Service    string
	Definition string
}

func (l Logsource) String() string {
	var parts []string
	for _, kv := range [][2]string{{"category", l.Category}, {"product", l.Product}, {"service", l.Service}} {
		if kv[1] != "" {
			parts = append(parts, kv[0]+"="+kv[1])
		}
	}
	if len(parts) == 0 {
		return "(empty logsource)"
	}
	return strings.Join(parts, " ")
}

// Detection is the detection section: named searches and the condition.
type Detection struct {
	// Searches are the detection identifiers in document order.
	Searches []*Search
	// Conditions holds the condition, or each condition of a list (ORed).
	Conditions []string
	// Timeframe is the deprecated aggregation window, kept to report it.
	Timeframe string
}

// Search is one detection identifier: alternatives, any of which matches.
type Search struct {
	Name         string
	Line         int
	Alternatives []Alternative
}

// Alternative is a set of items that must all match (a YAML map), or, for a
// keyword list, a single item with an empty Field.
type Alternative struct {
	Items []Item
}

// Item is one field (or keyword) with its modifiers and values.
type Item struct {
	Field     string
	Modifiers []string
	Values    []Value
	Line      int
}

// ValueKind is the YAML type of a value.
type ValueKind uint8

// The YAML scalar types a Sigma value can have.
const (
	ValueString ValueKind = iota
	ValueInt
	ValueFloat
	ValueBool
	ValueNull
)

// Value is one scalar of a detection item. S is the text as written.
type Value struct {
	Kind ValueKind
	S    string
	I    int64
	F    float64
	B    bool
}

// ParseError locates a problem in a rule file.
type ParseError struct {
	Line int
	Msg  string
}

func (e *ParseError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("line %d: %s", e.Line, e.Msg)
	}
	return e.Msg
}

func perr(n *yaml.Node, format string, args ...any) error {
	line := 0
	if n != nil {
		line = n.Line
	}
	return &ParseError{Line: line, Msg: fmt.Sprintf(format, args...)}
}

// Limits that keep a hostile rule file from costing unbounded work.
const (
	maxRuleBytes  = 4 << 20
	maxDocuments  = 1000
	maxValues     = 100_000
	maxFieldDepth = 32
)

// ParseAll reads every YAML document of a rule file. Documents that are not
// Sigma rules (empty ones) are skipped; each rule keeps its document's line.
func ParseAll(data []byte) ([]*Rule, error) {
	if len(data) > maxRuleBytes {
		return nil, fmt.Errorf("rule file of %d bytes: more than %d", len(data), maxRuleBytes)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var rules []*Rule
	for i := 0; ; i++ {
		if i >= maxDocuments {
			return nil, fmt.Errorf("more than %d YAML documents", maxDocuments)
		}
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("yaml: %w", err)
		}
		if len(doc.Content) == 0 {
			continue
		}
		r, err := parseDoc(doc.Content[0])
		if err != nil {
			return nil, err
		}
		if r != nil {
			rules = append(rules, r)
		}
	}
	if len(rules) == 0 {
		return nil, errors.New("no Sigma rule in the file")
	}
	return rules, nil
}

// Parse reads a file holding exactly one rule.
func Parse(data []byte) (*Rule, error) {
	rules, err := ParseAll(data)
	if err != nil {
		return nil, err
	}
	if len(rules) != 1 {
		return nil, fmt.Errorf("%d rules in the file, want one", len(rules))
	}
	return rules[0], nil
}

func parseDoc(n *yaml.Node) (*Rule, error) {
	if n.Kind != yaml.MappingNode {
		return nil, perr(n, "a rule must be a YAML map")
	}
	r := &Rule{Line: n.Line}
	var detection, logsource, correlation *yaml.Node
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if seen[k.Value] {
			return nil, perr(k, "key %q appears twice", k.Value)
		}
		seen[k.Value] = true
		var err error
		switch k.Value {
		case "title":
			r.Title, err = scalarString(v, "title")
		case "id":
			r.ID, err = scalarString(v, "id")
		case "name":
			r.Name, err = scalarString(v, "name")
		case "status":
			r.Status, err = scalarString(v, "status")
		case "description":
			r.Description, err = scalarString(v, "description")
		case "author":
			r.Author, err = scalarString(v, "author")
		case "level":
			r.Level, err = scalarString(v, "level")
		case "date":
			r.Date, err = scalarString(v, "date")
		case "modified":
			r.Modified, err = scalarString(v, "modified")
		case "references":
			r.References, err = stringList(v, "references")
		case "tags":
			r.Tags, err = stringList(v, "tags")
		case "falsepositives":
			r.FalsePositives, err = stringList(v, "falsepositives")
		case "logsource":
			logsource = v
		case "detection":
			detection = v
		case "correlation":
			correlation = v
		case "action":
			// Sigma 1.x rule collections (action: global/reset/repeat)
			// merge documents; the specification dropped them.
			return nil, perr(k, "rule collections (action: %s) are not part of the Sigma specification any more", v.Value)
		}
		if err != nil {
			return nil, err
		}
	}
	if r.Title == "" {
		return nil, perr(n, "title is required")
	}
	switch r.Level {
	case "", "informational", "low", "medium", "high", "critical":
	default:
		return nil, perr(n, "level %q: want informational, low, medium, high or critical", r.Level)
	}
	if correlation != nil {
		c, err := parseCorrelation(correlation)
		if err != nil {
			return nil, err
		}
		r.Correlation = c
		return r, nil
	}
	if logsource == nil {
		return nil, perr(n, "logsource is required")
	}
	if err := parseLogsource(logsource, &r.Logsource); err != nil {
		return nil, err
	}
	if detection == nil {
		return nil, perr(n, "detection is required")
	}
	if err := parseDetection(detection, &r.Detection); err != nil {
		return nil, err
	}
	return r, nil
}

func scalarString(n *yaml.Node, what string) (string, error) {
	if n.Kind != yaml.ScalarNode {
		return "", perr(n, "%s must be a string", what)
	}
	return n.Value, nil
}

func stringList(n *yaml.Node, what string) ([]string, error) {
	switch n.Kind {
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return nil, nil
		}
		return []string{n.Value}, nil
	case yaml.SequenceNode:
		out := make([]string, 0, len(n.Content))
		for _, c := range n.Content {
			if c.Kind != yaml.ScalarNode {
				return nil, perr(c, "%s must be a list of strings", what)
			}
			out = append(out, c.Value)
		}
		return out, nil
	}
	return nil, perr(n, "%s must be a list of strings", what)
}

func parseLogsource(n *yaml.Node, ls *Logsource) error {
	if n.Kind != yaml.MappingNode {
		return perr(n, "logsource must be a map")
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		s, err := scalarString(v, "logsource."+k.Value)
		if err != nil {
			return err
		}
		switch k.Value {
		case "category":
			ls.Category = s
		case "product":
			ls.Product = s
		case "service":
			ls.Service = s
		case "definition":
			ls.Definition = s
		}
	}
	if ls.Category == "" && ls.Product == "" && ls.Service == "" {
		return perr(n, "logsource needs a category, product or service")
	}
	return nil
}

func parseDetection(n *yaml.Node, d *Detection) error {
	if n.Kind != yaml.MappingNode {
		return perr(n, "detection must be a map")
	}
	names := map[string]bool{}
	values := 0
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		switch k.Value {
		case "condition":
			conds, err := stringList(v, "condition")
			if err != nil {
				return err
			}
			if len(conds) == 0 {
				return perr(v, "condition is empty")
			}
			d.Conditions = conds
			continue
		case "timeframe":
			s, err := scalarString(v, "timeframe")
			if err != nil {
				return err
			}
			d.Timeframe = s
			continue
		}
		if names[k.Value] {
			return perr(k, "detection identifier %q appears twice", k.Value)
		}
		names[k.Value] = true
		if k.Value == "" {
			return perr(k, "empty detection identifier")
		}
		s, err := parseSearch(k.Value, v, &values)
		if err != nil {
			return err
		}
		s.Line = k.Line
		d.Searches = append(d.Searches, s)
	}
	if len(d.Conditions) == 0 {
		return perr(n, "detection.condition is required")
	}
	if len(d.Searches) == 0 {
		return perr(n, "detection has no search identifiers")
	}
	return nil
}

func parseSearch(name string, n *yaml.Node, values *int) (*Search, error) {
	s := &Search{Name: name}
	switch n.Kind {
	case yaml.MappingNode:
		alt, err := parseMap(n, values)
		if err != nil {
			return nil, err
		}
		s.Alternatives = append(s.Alternatives, alt)
	case yaml.SequenceNode:
		var keywords Item
		keywords.Line = n.Line
		for _, c := range n.Content {
			switch c.Kind {
			case yaml.MappingNode:
				alt, err := parseMap(c, values)
				if err != nil {
					return nil, err
				}
				s.Alternatives = append(s.Alternatives, alt)
			case yaml.ScalarNode:
				v, err := parseValue(c, values)
				if err != nil {
					return nil, err
				}
				keywords.Values = append(keywords.Values, v)
			default:
				return nil, perr(c, "%s: a list element must be a map or a keyword", name)
			}
		}
		if len(keywords.Values) > 0 {
			s.Alternatives = append(s.Alternatives, Alternative{Items: []Item{keywords}})
		}
		if len(s.Alternatives) == 0 {
			return nil, perr(n, "%s: empty list", name)
		}
	case yaml.ScalarNode:
		v, err := parseValue(n, values)
		if err != nil {
			return nil, err
		}
		s.Alternatives = append(s.Alternatives, Alternative{Items: []Item{{Values: []Value{v}, Line: n.Line}}})
	default:
		return nil, perr(n, "%s: a search must be a map, a list or a keyword", name)
	}
	return s, nil
}

func parseMap(n *yaml.Node, values *int) (Alternative, error) {
	var alt Alternative
	if len(n.Content) == 0 {
		return alt, perr(n, "empty map")
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			return alt, perr(k, "a field name must be a string")
		}
		parts := strings.Split(k.Value, "|")
		it := Item{Field: parts[0], Line: k.Line}
		if len(parts) > maxFieldDepth {
			return alt, perr(k, "%q: too many modifiers", k.Value)
		}
		for _, m := range parts[1:] {
			if m == "" {
				return alt, perr(k, "%q: empty modifier", k.Value)
			}
			it.Modifiers = append(it.Modifiers, m)
		}
		switch v.Kind {
		case yaml.ScalarNode:
			val, err := parseValue(v, values)
			if err != nil {
				return alt, err
			}
			it.Values = []Value{val}
		case yaml.SequenceNode:
			if len(v.Content) == 0 {
				return alt, perr(v, "%q: empty list of values", k.Value)
			}
			for _, c := range v.Content {
				if c.Kind != yaml.ScalarNode {
					return alt, perr(c, "%q: values must be scalars", k.Value)
				}
				val, err := parseValue(c, values)
				if err != nil {
					return alt, err
				}
				it.Values = append(it.Values, val)
			}
		default:
			return alt, perr(v, "%q: a value must be a scalar or a list of scalars", k.Value)
		}
		alt.Items = append(alt.Items, it)
	}
	return alt, nil
}

func parseValue(n *yaml.Node, count *int) (Value, error) {
	*count++
	if *count > maxValues {
		return Value{}, perr(n, "more than %d values", maxValues)
	}
	v := Value{S: n.Value}
	switch n.ShortTag() {
	case "!!null":
		v.Kind = ValueNull
	case "!!bool":
		b, err := strconv.ParseBool(strings.ToLower(n.Value))
		if err != nil {
			// YAML 1.1 spellings (yes/no/on/off) decode as strings.
			v.Kind = ValueString
			return v, nil
		}
		v.Kind, v.B = ValueBool, b
	case "!!int":
		i, err := strconv.ParseInt(n.Value, 0, 64)
		if err != nil {
			v.Kind = ValueString // too large or an odd notation: keep the text
			return v, nil
		}
		v.Kind, v.I = ValueInt, i
	case "!!float":
		f, err := strconv.ParseFloat(n.Value, 64)
		if err != nil {
			v.Kind = ValueString
			return v, nil
		}
		v.Kind, v.F = ValueFloat, f
	default:
		v.Kind = ValueString
	}
	return v, nil
}
