package config

import (
	"encoding"
	"errors"
	"fmt"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
)

// An EnvOverride is one environment variable that Load or Decode applied.
type EnvOverride struct {
	Var   string // CROWSNEST_NATS__URL
	Path  string // nats.url
	Value string // the variable's value, or [REDACTED] for a Secret field
}

// applyEnv sets the fields named by prefixed environment variables. Every
// variable is tried, so one run reports every mistake.
func applyEnv(root reflect.Value, o *options) error {
	env := o.environ
	if !o.environSet {
		env = os.Environ()
	}
	allow := append([]string{o.prefix + "CONFIG", o.prefix + "TEST_*", o.prefix + "DEV_*"}, o.allow...)

	type kv struct{ name, value string }
	var vars []kv
	for _, entry := range env {
		name, value, ok := strings.Cut(entry, "=")
		if !ok || o.prefix == "" || !strings.HasPrefix(name, o.prefix) || allowed(name, allow) {
			continue
		}
		vars = append(vars, kv{name, value})
	}
	slices.SortFunc(vars, func(a, b kv) int { return strings.Compare(a.name, b.name) })

	var errs []error
	for _, v := range vars {
		s := envSetter{prefix: o.prefix, name: v.name}
		segs := strings.Split(strings.TrimPrefix(v.name, o.prefix), "__")
		path, leaf, err := s.set(root, segs, 0, "", v.value)
		if err != nil {
			errs = append(errs, fmt.Errorf("env %s: %w", v.name, err))
			continue
		}
		if o.onOverride != nil {
			value := v.value
			if isSecret(leaf) {
				value = redacted
			}
			o.onOverride(EnvOverride{Var: v.name, Path: path, Value: value})
		}
	}
	return errors.Join(errs...)
}

func allowed(name string, patterns []string) bool {
	for _, p := range patterns {
		if prefix, ok := strings.CutSuffix(p, "*"); ok && strings.HasPrefix(name, prefix) || p == name {
			return true
		}
	}
	return false
}

func isSecret(t reflect.Type) bool {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
		t = t.Elem()
	}
	return t == secretType
}

// envName is a key as it appears in a variable name: "max_bytes" → "MAX_BYTES".
func envName(key string) string {
	return strings.Map(func(r rune) rune {
		if r == '-' || r == '.' {
			return '_'
		}
		return r
	}, strings.ToUpper(key))
}

type envSetter struct {
	prefix string
	name   string // the whole variable name, for suggestions
}

// set walks segs[i:] down from v and parses raw into the field they name. It
// returns the key path and the type of the field it set.
func (s envSetter) set(v reflect.Value, segs []string, i int, path, raw string) (string, reflect.Type, error) {
	if i == len(segs) {
		if t := derefType(v.Type()); !opaque(t) && (t.Kind() == reflect.Struct || t.Kind() == reflect.Map) {
			return "", nil, fmt.Errorf("%s is a section, not a value: set its fields, as in %s__<FIELD>", displayPath(path), s.name)
		}
		if err := setScalar(v, raw, path); err != nil {
			return "", nil, err
		}
		return path, v.Type(), nil
	}
	for v.Kind() == reflect.Pointer {
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		v = v.Elem()
	}
	seg := segs[i]
	if seg == "" {
		return "", nil, errors.New(`the name has an empty level (a stray "_" next to "__"?)`)
	}
	switch {
	case opaque(v.Type()):
	case v.Kind() == reflect.Struct:
		info := structFields(v.Type())
		var names []string
		for _, f := range info.fields {
			if envName(f.key) == seg {
				fv, err := fieldByIndex(v, f.index)
				if err != nil {
					return "", nil, err
				}
				return s.set(fv, segs, i+1, joinPath(path, f.key), raw)
			}
			names = append(names, envName(f.key))
		}
		return "", nil, fmt.Errorf("no config field %s%s", s.missing(segs, i, path), s.suggest(segs, i, names, info))
	case v.Kind() == reflect.Map && v.Type().Key().Kind() == reflect.String:
		var names []string
		for _, k := range sortedKeys(v) {
			if envName(k.String()) != seg {
				names = append(names, envName(k.String()))
				continue
			}
			// Map elements are not addressable: edit a copy, store it back.
			elem := reflect.New(v.Type().Elem()).Elem()
			elem.Set(v.MapIndex(k))
			p, leaf, err := s.set(elem, segs, i+1, joinPath(path, k.String()), raw)
			if err != nil {
				return "", nil, err
			}
			v.SetMapIndex(k, elem)
			return p, leaf, nil
		}
		return "", nil, fmt.Errorf("no entry %s: the environment can override entries of %s that the file defines, not add them%s",
			s.missing(segs, i, path), displayPath(path), s.suggest(segs, i, names, structInfo{}))
	}
	return "", nil, fmt.Errorf("%s is a single value; nothing is below it", displayPath(path))
}

func displayPath(path string) string {
	if path == "" {
		return "the top level"
	}
	return path
}

// missing names the unmatched key as the user wrote it, below the known path.
func (s envSetter) missing(segs []string, i int, path string) string {
	return joinPath(path, strings.ToLower(segs[i]))
}

// suggest offers the variable the user probably meant: the nearest key at the
// level that failed, or the same name with "__" where a single "_" split
// two levels (CROWSNEST_NATS_URL for CROWSNEST_NATS__URL).
func (s envSetter) suggest(segs []string, i int, names []string, info structInfo) string {
	rebuild := func(seg string) string {
		fixed := slices.Clone(segs)
		fixed[i] = seg
		return s.prefix + strings.Join(fixed, "__")
	}
	if c := closest(segs[i], names); c != "" {
		return fmt.Sprintf(" (did you mean %s?)", rebuild(c))
	}
	for _, f := range info.fields {
		if t := derefType(f.typ); t.Kind() == reflect.Struct && !opaque(t) || t.Kind() == reflect.Map {
			if rest, ok := strings.CutPrefix(segs[i], envName(f.key)+"_"); ok && rest != "" {
				return fmt.Sprintf(" (did you mean %s? levels are separated by a double underscore)",
					rebuild(envName(f.key)+"__"+rest))
			}
		}
	}
	return ""
}

func derefType(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

func sortedKeys(m reflect.Value) []reflect.Value {
	keys := m.MapKeys()
	slices.SortFunc(keys, func(a, b reflect.Value) int { return strings.Compare(a.String(), b.String()) })
	return keys
}

// fieldByIndex is reflect.Value.FieldByIndex, allocating nil embedded
// pointers on the way as yaml.v3 does for ",inline" pointers.
func fieldByIndex(v reflect.Value, index []int) (reflect.Value, error) {
	for i, x := range index {
		if i > 0 {
			for v.Kind() == reflect.Pointer {
				if v.IsNil() {
					if !v.CanSet() {
						return reflect.Value{}, errors.New("cannot set a field inside an unexported embedded pointer")
					}
					v.Set(reflect.New(v.Type().Elem()))
				}
				v = v.Elem()
			}
		}
		v = v.Field(x)
	}
	return v, nil
}

// setScalar parses raw into v by v's type: TextUnmarshaler first (ByteSize,
// or any type that knows its own text form), then time.Duration, then the
// basic kinds; a slice takes comma-separated items.
func setScalar(v reflect.Value, raw, path string) error {
	if !v.CanSet() {
		return fmt.Errorf("%s cannot be set", path)
	}
	if v.Kind() == reflect.Pointer {
		p := reflect.New(v.Type().Elem())
		if err := setScalar(p.Elem(), raw, path); err != nil {
			return err
		}
		v.Set(p)
		return nil
	}
	if u, ok := v.Addr().Interface().(encoding.TextUnmarshaler); ok {
		if err := u.UnmarshalText([]byte(raw)); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		return nil
	}
	if v.Type() == durationType {
		d, err := time.ParseDuration(raw)
		if err != nil {
			return fmt.Errorf("%s: want a duration with a unit, such as 30s or 5m: %w", path, err)
		}
		v.SetInt(int64(d))
		return nil
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(raw)
	case reflect.Bool:
		b, err := strconv.ParseBool(raw)
		if err != nil {
			return fmt.Errorf("%s: want true or false: %w", path, err)
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, err := strconv.ParseInt(raw, 0, v.Type().Bits())
		if err != nil {
			return fmt.Errorf("%s: want %s: %w", path, v.Type(), err)
		}
		v.SetInt(n)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, err := strconv.ParseUint(raw, 0, v.Type().Bits())
		if err != nil {
			return fmt.Errorf("%s: want %s: %w", path, v.Type(), err)
		}
		v.SetUint(n)
	case reflect.Float32, reflect.Float64:
		f, err := strconv.ParseFloat(raw, v.Type().Bits())
		if err != nil {
			return fmt.Errorf("%s: want %s: %w", path, v.Type(), err)
		}
		v.SetFloat(f)
	case reflect.Slice:
		var items []string
		if strings.TrimSpace(raw) != "" {
			items = strings.Split(raw, ",")
		}
		s := reflect.MakeSlice(v.Type(), len(items), len(items))
		for i, item := range items {
			elem := s.Index(i)
			if elem.Kind() == reflect.Slice || elem.Kind() == reflect.Struct && !opaque(elem.Type()) {
				return fmt.Errorf("%s: a list of %s cannot be set from the environment", path, elem.Type())
			}
			if err := setScalar(elem, strings.TrimSpace(item), fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
		v.Set(s)
	default:
		return fmt.Errorf("%s: a %s cannot be set from the environment", path, v.Type())
	}
	return nil
}
