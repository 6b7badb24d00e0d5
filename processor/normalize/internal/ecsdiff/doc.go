// Package ecsdiff compares crowsnest events with the ECS documents another
// integration (Elastic's) produces for the same records, field by field, and
// checks every difference against a documented allowlist: the table in a
// mapper's DIFFERENCES.md. It is test support: it reads files and decodes into
// map[string]any, which production code must not do per event.
package ecsdiff
