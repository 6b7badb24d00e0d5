package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// DefaultEnvPrefix starts the name of every environment variable that
// overrides a configuration field.
const DefaultEnvPrefix = "CROWSNEST_"

// A DecodeError is one problem in a configuration file. Load and Decode return
// one, or several joined with errors.Join, sorted by line.
type DecodeError struct {
	File string // the path given to Load or the name given to Decode
	Line int    // 1-based; 0 when the YAML parser did not give one
	Path string // dotted key path of the offending key or value, "" at the top or when unknown
	Msg  string // what is wrong, naming the key path where it helps
}

func (e *DecodeError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return e.File + ": " + e.Msg
}

// An Option changes how Load and Decode apply environment overrides.
type Option func(*options)

type options struct {
	prefix     string
	allow      []string
	environ    []string
	environSet bool
	onOverride func(EnvOverride)
}

// WithEnvPrefix replaces [DefaultEnvPrefix]; the empty prefix turns
// overrides off. The default allowlist follows the prefix: <prefix>CONFIG and
// <prefix>TEST_* and <prefix>DEV_* (the development services' settings).
func WithEnvPrefix(prefix string) Option {
	return func(o *options) { o.prefix = prefix }
}

// WithEnvAllow adds names that carry the prefix but are not configuration, so
// they are not reported as typos. A pattern ending in '*' matches every name
// that starts with the rest of it; any other pattern matches one name exactly.
func WithEnvAllow(patterns ...string) Option {
	return func(o *options) { o.allow = append(o.allow, patterns...) }
}

// WithEnviron reads overrides from env ("NAME=value" entries, as os.Environ
// returns them) instead of the process environment. WithEnviron(nil) applies
// no overrides at all, which tests and "validate this file" commands want.
func WithEnviron(env []string) Option {
	return func(o *options) { o.environ, o.environSet = env, true }
}

// OnEnvOverride calls fn once for every environment variable applied, in name
// order, after the file decoded cleanly — to log them at debug level.
func OnEnvOverride(fn func(EnvOverride)) Option {
	return func(o *options) { o.onOverride = fn }
}

// Load reads the YAML file at path into dst, then applies environment
// overrides. dst must be a non-nil pointer, normally to a struct already
// holding the defaults; keys absent from the file keep them. A file that does
// not exist is an error (the caller decides whether a missing file is fine);
// an empty file is not.
//
// The environment is applied only when the file decoded cleanly. An override
// below an optional (pointer) section the file left out creates that section
// with zero values. Types with their own UnmarshalYAML check their own keys:
// the strict check stops at them.
//
// On error dst may have been partly written and should be discarded.
func Load(path string, dst any, opts ...Option) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read config: %w", err)
	}
	return Decode(data, path, dst, opts...)
}

// Decode is Load for bytes already in memory; name stands for the file in
// error messages.
func Decode(data []byte, name string, dst any, opts ...Option) error {
	o := options{prefix: DefaultEnvPrefix}
	for _, opt := range opts {
		opt(&o)
	}
	rv := reflect.ValueOf(dst)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return fmt.Errorf("config: decode %s: destination must be a non-nil pointer, got %T", name, dst)
	}
	if err := decodeYAML(data, name, dst, rv.Elem().Type()); err != nil {
		return err
	}
	return applyEnv(rv.Elem(), &o)
}

func decodeYAML(data []byte, name string, dst any, t reflect.Type) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	switch err := dec.Decode(&doc); {
	case errors.Is(err, io.EOF):
		return nil // empty file, or only comments: the defaults stand
	case err != nil:
		return parseError(name, err)
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case errors.Is(err, io.EOF):
	case err != nil:
		return parseError(name, err)
	default:
		return &DecodeError{File: name, Line: extra.Line,
			Msg: "a second YAML document (after ---): a crowsnest config file holds exactly one"}
	}

	c := checker{file: name, seen: make(map[aliasVisit]bool)}
	c.check(&doc, t, "")
	if len(c.errs) > 0 {
		return c.err()
	}

	// The check above has already found anything the decoder would reject;
	// KnownFields stays on so that a gap in the check fails loudly rather
	// than dropping a key.
	strict := yaml.NewDecoder(bytes.NewReader(data))
	strict.KnownFields(true)
	if err := strict.Decode(dst); err != nil {
		return parseError(name, err)
	}
	return nil
}

var yamlLine = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

// parseError turns a yaml.v3 error into DecodeErrors.
func parseError(name string, err error) error {
	problems := yamlProblems(name, err)
	errs := make([]error, len(problems))
	for i, p := range problems {
		errs[i] = p
	}
	return errors.Join(errs...)
}

// yamlProblems splits a yaml.v3 error ("yaml: line 3: did not find expected
// key", or a TypeError listing "line N: ..." lines) into located problems.
func yamlProblems(name string, err error) []*DecodeError {
	lines := []string{err.Error()}
	if te, ok := errors.AsType[*yaml.TypeError](err); ok {
		lines = te.Errors
	}
	problems := make([]*DecodeError, 0, len(lines))
	for _, l := range lines {
		p := &DecodeError{File: name, Msg: strings.TrimPrefix(l, "yaml: ")}
		if m := yamlLine.FindStringSubmatch(l); m != nil {
			if line, err := strconv.Atoi(m[1]); err == nil {
				p.Line, p.Msg = line, m[2]
			}
		}
		problems = append(problems, p)
	}
	return problems
}
