// Package schemas is crowsnest's one shared vocabulary: the field registry
// (fields.yml) and what is generated from it — the Event and Alert types
// with their JSON encoders, the ClickHouse DDL, the Elasticsearch templates.
//
// It performs no I/O and depends on nothing outside the standard library at
// run time; every stage imports it, so it must stay small. Edit fields.yml and
// run `make generate`; never edit the generated files.
package schemas

//go:generate go run ./internal/cmd/schemagen -root .. -registry fields.yml
