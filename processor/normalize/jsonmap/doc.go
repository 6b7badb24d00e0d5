// Package jsonmap maps the generic json source — any tool's JSON objects,
// shipped by collectors/jsonlines — with mappings the user declares under
// processor.normalize.json (normalize.JSONConfig): per producer, the gjson
// path of the natural id (event.id becomes json-<source>-<value>), the time
// and its layout, a list of {from: gjson path, to: registry field} and
// fixed values ({to, value}). Field names are checked against the field
// registry (schemas.Fields()) when the configuration loads, with a
// suggestion for a typo; values are converted to the field's registry type
// (keyword, list, long/integer with range checks, boolean, date by layout,
// flattened map, kept JSON). A value that does not convert is skipped, not
// the record. A record takes the mapping naming its collector, else the
// default one.
//
// It is compiled once: plain dotted paths form a tree walked in one pass
// per record (gjson ForEach at each level, stopping when every wanted key
// was seen), other gjson syntax is evaluated with gjson.Get, and each
// field is written through a generated accessor (targets_gen.go) — no
// reflection and no map per event.
//
// It must not guess: fields the mapping does not name are not mapped (the
// record stays whole in event.original), and OCSF says Other (activity 99)
// unless the mapping sets the class and activity.
package jsonmap
