package config

import (
	"cmp"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// checker walks the parsed document beside the destination type before
// anything is decoded, so that every problem is reported at once with its
// line and key path: unknown keys (with a suggestion), duplicate keys, values
// of the wrong type, and values a TextUnmarshaler rejects (which yaml.v3
// itself reports without a line).
type checker struct {
	file string
	errs []*DecodeError
	// seen bounds the walk through aliases: each anchored node is checked
	// once per type, so "billion laughs" documents cost linear time.
	seen map[aliasVisit]bool
}

type aliasVisit struct {
	node *yaml.Node
	typ  reflect.Type
}

func (c *checker) fail(line int, path, format string, args ...any) {
	c.errs = append(c.errs, &DecodeError{File: c.file, Line: line, Path: path, Msg: fmt.Sprintf(format, args...)})
}

// failAt is fail with the key path leading the message.
func (c *checker) failAt(line int, path, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if path != "" {
		msg = path + ": " + msg
	}
	c.errs = append(c.errs, &DecodeError{File: c.file, Line: line, Path: path, Msg: msg})
}

func (c *checker) err() error {
	slices.SortStableFunc(c.errs, func(a, b *DecodeError) int { return cmp.Compare(a.Line, b.Line) })
	errs := make([]error, len(c.errs))
	for i, e := range c.errs {
		errs[i] = e
	}
	return errors.Join(errs...)
}

func (c *checker) check(n *yaml.Node, t reflect.Type, path string) {
	if n.Kind == yaml.AliasNode {
		if n.Alias == nil {
			return
		}
		n = n.Alias
		v := aliasVisit{n, t}
		if c.seen[v] {
			return
		}
		c.seen[v] = true
	}
	if n.Kind == yaml.DocumentNode {
		for _, content := range n.Content {
			c.check(content, t, path)
		}
		return
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return // yaml.v3 leaves a value type alone and clears a pointer, map or slice
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t.Kind() == reflect.Interface || t == nodeType:
		// Takes any YAML. Not probed: decoding it here would only repeat
		// the decoder's alias-expansion limits at a cost per value.
		return
	case decodesItself(t):
		c.probe(n, t, path)
		return
	case reflect.PointerTo(t).Implements(textUnmarshalerType):
		if c.want(n, yaml.ScalarNode, t, path) {
			c.probe(n, t, path)
		}
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		if c.want(n, yaml.MappingNode, t, path) {
			info := structFields(t)
			c.mapping(n, t, path, func(key, value *yaml.Node) {
				c.structKey(key, value, info, path)
			})
		}
	case reflect.Map:
		if c.want(n, yaml.MappingNode, t, path) {
			c.mapping(n, t, path, func(key, value *yaml.Node) {
				if t.Key().Kind() != reflect.String {
					c.probe(key, t.Key(), path)
				}
				c.check(value, t.Elem(), joinPath(path, key.Value))
			})
		}
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			c.probe(n, t, path) // []byte takes a string or !!binary
			return
		}
		if c.want(n, yaml.SequenceNode, t, path) {
			for i, item := range n.Content {
				c.check(item, t.Elem(), fmt.Sprintf("%s[%d]", path, i))
			}
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		// yaml.v3 truncates 1.5 to 1 without a word; a count written as a
		// fraction is a mistake worth stopping for.
		switch {
		case !c.want(n, yaml.ScalarNode, t, path):
		case n.ShortTag() == "!!float":
			c.failAt(n.Line, path, "cannot use %s as %s", describeNode(n), describeType(t))
		default:
			c.probe(n, t, path)
		}
	default:
		if c.want(n, yaml.ScalarNode, t, path) {
			c.probe(n, t, path)
		}
	}
}

// want reports whether n has the shape t needs, and records the problem if not.
func (c *checker) want(n *yaml.Node, kind yaml.Kind, t reflect.Type, path string) bool {
	if n.Kind == kind {
		return true
	}
	c.failAt(n.Line, path, "cannot use %s as %s", describeNode(n), describeType(t))
	return false
}

// mapping visits the pairs of a mapping node, following merge keys ("<<")
// and reporting duplicate keys.
func (c *checker) mapping(n *yaml.Node, t reflect.Type, path string, visit func(key, value *yaml.Node)) {
	first := make(map[string]int, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, value := n.Content[i], n.Content[i+1]
		if key.Kind == yaml.AliasNode && key.Alias != nil {
			key = key.Alias
		}
		if isMerge(key) {
			c.merge(value, t, path, visit)
			continue
		}
		if key.Kind != yaml.ScalarNode {
			c.failAt(key.Line, path, "cannot use %s as a key", describeNode(key))
			continue
		}
		if line, dup := first[key.Value]; dup {
			c.fail(key.Line, joinPath(path, key.Value), "key %q%s is already defined at line %d", key.Value, inPath(path), line)
			continue
		}
		first[key.Value] = key.Line
		visit(key, value)
	}
}

func (c *checker) merge(value *yaml.Node, t reflect.Type, path string, visit func(key, value *yaml.Node)) {
	switch {
	case value.Kind == yaml.AliasNode && value.Alias != nil && value.Alias.Kind == yaml.MappingNode:
		// Bounded like aliases in check: merging one anchor many times
		// into many places must not cost exponential time.
		v := aliasVisit{value.Alias, t}
		if !c.seen[v] {
			c.seen[v] = true
			c.mapping(value.Alias, t, path, visit)
		}
	case value.Kind == yaml.MappingNode:
		c.mapping(value, t, path, visit)
	case value.Kind == yaml.SequenceNode:
		for _, item := range value.Content {
			if item.Kind == yaml.SequenceNode {
				c.failAt(item.Line, path, "a merge (<<) takes a mapping or a list of mappings")
				continue
			}
			c.merge(item, t, path, visit)
		}
	default:
		c.failAt(value.Line, path, "a merge (<<) takes a mapping or a list of mappings")
	}
}

func isMerge(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Value == "<<" && (n.Tag == "" || n.Tag == "!" || n.ShortTag() == "!!merge")
}

func (c *checker) structKey(key, value *yaml.Node, info structInfo, path string) {
	f, ok := info.lookup(key.Value)
	if !ok {
		if !info.open {
			c.fail(key.Line, joinPath(path, key.Value), "unknown field %q%s%s", key.Value, inPath(path), hint(key.Value, info.keys()))
		}
		return
	}
	c.check(value, f.typ, joinPath(path, key.Value))
}

func inPath(path string) string {
	if path == "" {
		return ""
	}
	return " in " + path
}

// hint suggests the nearest known key, or lists the known keys when none is
// near; a user who mistyped needs the fix, one who guessed needs the menu.
func hint(key string, known []string) string {
	if s := closest(key, known); s != "" {
		return fmt.Sprintf(" (did you mean %q?)", s)
	}
	if len(known) == 0 {
		return " (it takes no fields)"
	}
	return " (known fields: " + strings.Join(known, ", ") + ")"
}

// probe decodes n into a throwaway value of type t to learn whether the real
// decode will accept it, and records why not.
func (c *checker) probe(n *yaml.Node, t reflect.Type, path string) {
	err := n.Decode(reflect.New(t).Interface())
	if err == nil {
		return
	}
	te, isTypeErr := errors.AsType[*yaml.TypeError](err)
	switch {
	case isTypeErr && (n.Kind == yaml.ScalarNode || !decodesItself(t)):
		c.failAt(n.Line, path, "cannot use %s as %s", describeNode(n), describeType(t))
	case isTypeErr:
		// The problem is inside a value that decodes itself; yaml.v3's
		// own lines locate it.
		for _, p := range yamlProblems(c.file, te) {
			if p.Line == 0 {
				p.Line = n.Line
			}
			c.failAt(p.Line, path, "%s", p.Msg)
		}
	default:
		// A TextUnmarshaler or UnmarshalYAML said no; its error says why.
		c.failAt(n.Line, path, "%s", strings.TrimPrefix(err.Error(), "yaml: "))
	}
}

// decodesItself reports whether t has UnmarshalYAML or is an interface, so a
// type error inside it can come from any depth.
func decodesItself(t reflect.Type) bool {
	return t.Kind() == reflect.Interface || reflect.PointerTo(t).Implements(yamlUnmarshalerType)
}

func describeNode(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		v := n.Value
		if len(v) > 40 {
			v = v[:37] + "..."
		}
		if n.ShortTag() == "!!str" {
			return strconv.Quote(v)
		}
		return v
	default:
		return "this value"
	}
}

func describeType(t reflect.Type) string {
	switch {
	case t == byteSizeType:
		return `a byte size (such as "512MiB", "10GB" or 1048576)`
	case t == durationType:
		return `a duration (write it with a unit: "30s", "5m", "1h30m")`
	case t.Kind() == reflect.Bool:
		return "a boolean (true or false)"
	case t.Kind() == reflect.Struct:
		return "a mapping of keys"
	case t.Kind() == reflect.Map:
		return "a mapping"
	case t.Kind() == reflect.Slice || t.Kind() == reflect.Array:
		return "a list"
	case t.Kind() == reflect.String:
		return "a string"
	default:
		return t.String()
	}
}
