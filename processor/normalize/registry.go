package normalize

import (
	"errors"
	"fmt"
	"slices"
)

// A Registry maps source names to their mappers. It is built once, explicitly,
// from a list of factories (normalize/sources holds the list), and is read-only
// afterwards, so it is safe for concurrent use.
type Registry struct {
	entries map[string]*entry
}

type entry struct {
	source  string
	dataset string // "crowsnest.<source>", built once rather than per event
	mapper  Mapper
	format  Format
}

// NewRegistry builds each factory's mapper with cfg. Sources must be unique
// and non-empty; cfg must be valid.
func NewRegistry(cfg Config, factories ...Factory) (*Registry, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("normalize config: %w", err)
	}
	r := &Registry{entries: make(map[string]*entry, len(factories))}
	var errs []error
	for _, f := range factories {
		switch {
		case f.Source == "":
			errs = append(errs, errors.New("factory with an empty source name"))
			continue
		case f.New == nil:
			errs = append(errs, fmt.Errorf("source %s: factory has no constructor", f.Source))
			continue
		case r.entries[f.Source] != nil:
			errs = append(errs, fmt.Errorf("source %s: registered twice", f.Source))
			continue
		}
		m, err := f.New(cfg)
		if err != nil {
			errs = append(errs, fmt.Errorf("source %s: %w", f.Source, err))
			continue
		}
		r.entries[f.Source] = &entry{source: f.Source, dataset: "crowsnest." + f.Source, mapper: m, format: f.Format}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return r, nil
}

// Lookup returns the mapper of source.
func (r *Registry) Lookup(source string) (Mapper, bool) {
	e := r.entries[source]
	if e == nil {
		return nil, false
	}
	return e.mapper, true
}

// Sources returns the registered source names, sorted.
func (r *Registry) Sources() []string {
	out := make([]string, 0, len(r.entries))
	for s := range r.entries {
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}
