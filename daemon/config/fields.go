package config

import (
	"encoding"
	"reflect"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// field is one YAML key of a struct, found the way go.yaml.in/yaml/v3 finds it,
// so the strict check, the environment overrides and ValidateAll agree with
// the decoder on every name.
type field struct {
	key   string
	index []int // path from the outer struct, through ",inline" fields
	typ   reflect.Type
}

// structInfo lists a struct's keys. open is true when the struct also takes
// keys it does not name (an ",inline" map, or an inlined type with its own
// UnmarshalYAML), so no key can be called unknown.
type structInfo struct {
	fields []field
	open   bool
}

func (s structInfo) lookup(key string) (field, bool) {
	for _, f := range s.fields {
		if f.key == key {
			return f, true
		}
	}
	return field{}, false
}

func (s structInfo) keys() []string {
	keys := make([]string, len(s.fields))
	for i, f := range s.fields {
		keys[i] = f.key
	}
	return keys
}

// structFields mirrors yaml.v3's getStructInfo: unexported fields are skipped
// unless embedded, `yaml:"-"` is skipped, an untagged field's key is its
// lowercased name, and ",inline" structs lend their keys to the parent.
// Malformed tags are left for the decoder to report.
func structFields(t reflect.Type) structInfo {
	var info structInfo
	for i := range t.NumField() {
		sf := t.Field(i)
		if sf.PkgPath != "" && !sf.Anonymous {
			continue
		}
		tag := sf.Tag.Get("yaml")
		if tag == "" && !strings.Contains(string(sf.Tag), ":") {
			tag = string(sf.Tag)
		}
		if tag == "-" {
			continue
		}
		name, flags, _ := strings.Cut(tag, ",")
		if hasFlag(flags, "inline") {
			ft := sf.Type
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			switch {
			case ft.Kind() == reflect.Map:
				info.open = true
			case ft.Kind() == reflect.Struct && !reflect.PointerTo(ft).Implements(yamlUnmarshalerType):
				inner := structFields(ft)
				info.open = info.open || inner.open
				for _, f := range inner.fields {
					f.index = append([]int{i}, f.index...)
					info.fields = append(info.fields, f)
				}
			default:
				info.open = true
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(sf.Name)
		}
		info.fields = append(info.fields, field{key: name, index: []int{i}, typ: sf.Type})
	}
	return info
}

func hasFlag(flags, want string) bool {
	for f := range strings.SplitSeq(flags, ",") {
		if f == want {
			return true
		}
	}
	return false
}

var (
	yamlUnmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
	durationType        = reflect.TypeFor[time.Duration]()
	secretType          = reflect.TypeFor[Secret]()
	byteSizeType        = reflect.TypeFor[ByteSize]()
	nodeType            = reflect.TypeFor[yaml.Node]()
)

// opaque reports whether values of t decode themselves (UnmarshalYAML,
// UnmarshalText) or take anything (interfaces, yaml.Node), so the strict
// check must not look inside them.
func opaque(t reflect.Type) bool {
	if t.Kind() == reflect.Interface || t == nodeType {
		return true
	}
	pt := reflect.PointerTo(t)
	return pt.Implements(yamlUnmarshalerType) || pt.Implements(textUnmarshalerType)
}

// joinPath appends a key to a dotted path; an index ("[3]") is appended as is.
func joinPath(parent, child string) string {
	switch {
	case parent == "":
		return child
	case child == "":
		return parent
	case strings.HasPrefix(child, "["):
		return parent + child
	default:
		return parent + "." + child
	}
}
