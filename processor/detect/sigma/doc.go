// Package sigma reads Sigma rules (the SigmaHQ specification, YAML) and
// compiles them into matchers that test a schemas.Event without reflection
// and without building anything per event.
//
// The path of a rule: [Parse] turns the YAML into a [Rule] (detection
// identifiers, field items with their modifiers, the condition); [Compile]
// resolves every Sigma field name through a [Mapping] (the Sigma taxonomy —
// Kubernetes audit, process_creation, network_connection, file_event… — onto
// crowsnest's ECS fields, declared once in mapping.yml) to a
// schemas.FieldGetter, applies the value modifiers once, and builds a tree of
// nodes; a [Set] groups compiled rules by the sources their logsource can
// come from and indexes them by a literal field value, so an event is tested
// only against the rules that can match it.
//
// A construct the compiler cannot honour exactly (a regular expression RE2
// cannot run, a field with no mapping, a deprecated aggregation) is an
// [*UnsupportedError] naming it: a rule is never loaded with a part of it
// silently ignored.
//
// What it must not do: I/O (callers hand it bytes), alerting, suppression or
// state across events (processor/detect does that), global mutable state.
// Matching never panics and never allocates on the common paths.
package sigma
