package sigma

import (
	"strconv"

	"github.com/crowsnest-siem/crowsnest/schemas"
)

// A FieldReader reads one field of an event as a rule's logsource maps it;
// correlations group events with it. It is immutable.
type FieldReader struct {
	acc accessor
}

// Field resolves name as the rule's fields resolve (its logsource's
// mapping, then crowsnest's own names).
func (c *Compiled) Field(name string) (*FieldReader, error) {
	a, err := c.Logsource.resolve(name)
	if err != nil {
		return nil, err
	}
	return &FieldReader{acc: a}, nil
}

// First returns the field's first value as text (numbers in decimal,
// booleans as true/false), or false when the event has none.
func (r *FieldReader) First(e *schemas.Event) (string, bool) {
	var out string
	found := r.acc.any(e, func(v fval) bool {
		switch v.kind {
		case valInt:
			if v.s != "" {
				out = v.s
			} else {
				out = strconv.FormatInt(v.i, 10)
			}
		case valBool:
			out = strconv.FormatBool(v.b)
		default:
			out = v.s
		}
		return true
	})
	return out, found
}
