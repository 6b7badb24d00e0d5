package config

import (
	"errors"
	"fmt"
	"reflect"
	"strconv"
)

// A Validator checks its own fields and returns nil or the problems found,
// each a [FieldError] joined with errors.Join. It need not call Validate on
// its nested configs: [ValidateAll] reaches them, and would report their
// problems twice.
type Validator interface {
	Validate() error
}

// A ValidationError is a problem with one field, located by its key path
// ("sinks.file.max_bytes", "rules[2].name").
type ValidationError struct {
	Path string
	Err  error
}

func (e *ValidationError) Error() string {
	if e.Path == "" {
		return e.Err.Error()
	}
	return e.Path + ": " + e.Err.Error()
}

func (e *ValidationError) Unwrap() error { return e.Err }

// FieldError returns a problem with the field at path, relative to the
// struct whose Validate reports it: FieldError("dir", "must not be empty").
// The format may use %w.
func FieldError(path, format string, args ...any) error {
	return &ValidationError{Path: path, Err: fmt.Errorf(format, args...)}
}

// ValidateAll calls Validate on v and on every Validator below it — struct
// fields, pointers, slice and map elements, visited by yaml key in field
// order (map keys sorted) — and joins what they return. Each problem's path is
// prefixed with the path down to the Validator that returned it and with path
// itself ("" at the top), so a FieldError("dir", ...) from the file sink's
// config reads "sinks.file.dir: ...". An error that is not a FieldError is
// located at its Validator's path. Nil pointers are skipped.
func ValidateAll(path string, v Validator) error {
	var errs []error
	validateTree(reflect.ValueOf(v), path, &errs)
	return errors.Join(errs...)
}

func validateTree(v reflect.Value, path string, errs *[]error) {
	for v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface {
		if v.IsNil() {
			return
		}
		v = v.Elem()
	}
	if !v.IsValid() || !v.CanInterface() {
		return
	}
	if !v.CanAddr() {
		// Map elements and values in interfaces: copy, so that Validate
		// methods with pointer receivers are found too.
		c := reflect.New(v.Type()).Elem()
		c.Set(v)
		v = c
	}
	if val, ok := v.Addr().Interface().(Validator); ok {
		if err := val.Validate(); err != nil {
			*errs = append(*errs, prefixErrors(path, err)...)
		}
	}
	switch v.Kind() {
	case reflect.Struct:
		for _, f := range structFields(v.Type()).fields {
			fv, ok := fieldIfSet(v, f.index)
			if ok {
				validateTree(fv, joinPath(path, f.key), errs)
			}
		}
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			validateTree(v.Index(i), path+"["+strconv.Itoa(i)+"]", errs)
		}
	case reflect.Map:
		if v.Type().Key().Kind() != reflect.String {
			return
		}
		for _, k := range sortedKeys(v) {
			validateTree(v.MapIndex(k), joinPath(path, k.String()), errs)
		}
	}
}

// fieldIfSet follows index without allocating: a nil ",inline" pointer on
// the way means the field is absent.
func fieldIfSet(v reflect.Value, index []int) (reflect.Value, bool) {
	for i, x := range index {
		if i > 0 {
			for v.Kind() == reflect.Pointer {
				if v.IsNil() {
					return reflect.Value{}, false
				}
				v = v.Elem()
			}
		}
		v = v.Field(x)
	}
	return v, true
}

// prefixErrors flattens joined errors and puts prefix before each path.
func prefixErrors(prefix string, err error) []error {
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range joined.Unwrap() {
			out = append(out, prefixErrors(prefix, e)...)
		}
		return out
	}
	if fe, ok := err.(*ValidationError); ok {
		return []error{&ValidationError{Path: joinPath(prefix, fe.Path), Err: fe.Err}}
	}
	if prefix == "" {
		return []error{err}
	}
	return []error{&ValidationError{Path: prefix, Err: err}}
}
