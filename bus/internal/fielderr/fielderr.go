// Package fielderr is the config-validation error of the bus packages: a
// problem located by its key path relative to the config that reports it
// ("raw.max_bytes: must be > 0"), so that whoever embeds the config under a
// key can prefix the path ("topology.raw.max_bytes").
//
// It must not know any config: it only carries paths.
package fielderr

import (
	"errors"
	"fmt"
)

// Error is one invalid field.
type Error struct {
	Path string // yaml key path, relative to the validated config
	Err  error
}

// New returns the problem with the field at path.
func New(path, format string, args ...any) error {
	return &Error{Path: path, Err: fmt.Errorf(format, args...)}
}

func (e *Error) Error() string {
	if e.Path == "" {
		return e.Err.Error()
	}
	return e.Path + ": " + e.Err.Error()
}

// Unwrap returns the problem without its path.
func (e *Error) Unwrap() error { return e.Err }

// FieldPath returns the path, so a config loader can re-root it without
// knowing this type.
func (e *Error) FieldPath() string { return e.Path }

// Prefix puts prefix before the path of every Error in err (flattening
// errors.Join), and locates other errors at prefix.
func Prefix(prefix string, err error) error {
	if err == nil {
		return nil
	}
	var out []error
	var walk func(error)
	walk = func(e error) {
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, x := range j.Unwrap() {
				walk(x)
			}
			return
		}
		if fe, ok := e.(*Error); ok {
			out = append(out, &Error{Path: join(prefix, fe.Path), Err: fe.Err})
			return
		}
		out = append(out, &Error{Path: prefix, Err: e})
	}
	walk(err)
	return errors.Join(out...)
}

func join(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	case b[0] == '[':
		return a + b
	}
	return a + "." + b
}
