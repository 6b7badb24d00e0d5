package clickhouse

import (
	"errors"
	"fmt"
	"strings"
)

// Access names the ClickHouse principals of one crowsnest database, for
// Statements. Each name is a plain identifier (letters, digits, _), so that
// it is written into the statements without quoting; the users themselves
// (with their passwords) are created by the operator.
type Access struct {
	// Database holds the tables.
	Database string
	// Owner is the user that applies the schema (schema.manage: true):
	// it creates the database and tables and migrates them. Empty skips
	// its grants (the default user applies the schema, say).
	Owner string
	// Writer is the user the sink connects as with schema.manage false. It
	// may insert into the events and alerts tables and read their event_id
	// and timestamp columns (the lookup that keeps a redelivery from being
	// stored twice), nothing else.
	Writer string
	// Analyst is a role that may read every table of the database and
	// write nothing; grant it to the analysts' users.
	Analyst string
}

// Statements returns the GRANT (and CREATE ROLE) statements for a, in an
// order that can be run as is by a user with access management rights.
// Every statement is idempotent.
func (a Access) Statements() ([]string, error) {
	var errs []error
	if err := validateDatabase(a.Database); err != nil {
		errs = append(errs, fmt.Errorf("database: %w", err))
	}
	for _, p := range []struct{ what, name string }{{"owner", a.Owner}, {"writer", a.Writer}, {"analyst", a.Analyst}} {
		if p.name == "" && p.what == "owner" {
			continue
		}
		if !identRE.MatchString(p.name) || len(p.name) > 64 {
			errs = append(errs, fmt.Errorf("%s: %q must be a plain identifier matching %s", p.what, p.name, identRE))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	db := a.Database
	var out []string
	if a.Owner != "" {
		out = append(out,
			"GRANT CREATE DATABASE ON "+db+".* TO "+a.Owner,
			"GRANT CREATE TABLE, CREATE VIEW, DROP VIEW ON "+db+".* TO "+a.Owner,
			"GRANT ALTER ADD COLUMN, ALTER ADD INDEX, ALTER TTL, ALTER SETTINGS ON "+db+".* TO "+a.Owner,
			"GRANT SELECT, INSERT ON "+db+".* TO "+a.Owner,
			"GRANT SHOW TABLES, SHOW COLUMNS ON "+db+".* TO "+a.Owner,
		)
	}
	for _, t := range []string{"events", "alerts"} {
		out = append(out,
			"GRANT INSERT ON "+db+"."+t+" TO "+a.Writer,
			"GRANT SELECT(event_id, timestamp) ON "+db+"."+t+" TO "+a.Writer,
		)
	}
	// The rollup views insert into their tables as part of the writer's
	// insert, with the writer's rights where the view has no definer.
	s, err := RegistrySchema()
	if err != nil {
		return nil, err
	}
	for _, t := range s.Tables {
		if t.Name != "events" && t.Name != "alerts" {
			out = append(out, "GRANT INSERT ON "+db+"."+t.Name+" TO "+a.Writer)
		}
	}
	out = append(out,
		"CREATE ROLE IF NOT EXISTS "+a.Analyst,
		"GRANT SELECT ON "+db+".* TO "+a.Analyst,
	)
	return out, nil
}

// Script returns the statements as one SQL script, one per line.
func (a Access) Script() (string, error) {
	stmts, err := a.Statements()
	if err != nil {
		return "", err
	}
	return strings.Join(stmts, ";\n") + ";\n", nil
}
