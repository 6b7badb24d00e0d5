package schemas_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/crowsnest-siem/crowsnest/schemas/internal/gen"
)

// TestGeneratedFilesAreFresh fails when fields.yml changed without `make generate`.
func TestGeneratedFilesAreFresh(t *testing.T) {
	data, err := os.ReadFile("fields.yml")
	if err != nil {
		t.Fatal(err)
	}
	reg, err := gen.Parse(data)
	if err != nil {
		t.Fatalf("fields.yml: %v", err)
	}
	outs, err := gen.Outputs(reg)
	if err != nil {
		t.Fatal(err)
	}
	for rel, want := range outs {
		got, err := os.ReadFile(filepath.Join("..", filepath.FromSlash(rel)))
		if err != nil {
			t.Errorf("%s: %v (run `make generate`)", rel, err)
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s is stale: run `make generate` and commit the result", rel)
		}
	}
}

func TestRegistryRejectsBadInput(t *testing.T) {
	base := "schema_version: x\nclickhouse: {database: d, tables: {events: {engine: E, partition_by: p, order_by: [a]}, alerts: {engine: E, partition_by: p, order_by: [a]}}}\nelasticsearch: {data_streams: {events: e, alerts: a}}\n"
	cases := []struct {
		name, fields, want string
	}{
		{"unknown key", "fields: [{name: a, type: keyword, description: d, colour: red}]", "field colour not found"},
		{"unknown type", "fields: [{name: a, type: string, description: d}]", `unknown type "string"`},
		{"duplicate", "fields: [{name: a, type: keyword, description: d}, {name: a, type: keyword, description: d}]", "duplicate name"},
		{"leaf and group", "fields: [{name: a, type: keyword, description: d}, {name: a.b, type: keyword, description: d}]", "cannot also be a group"},
		{"column collision", "fields: [{name: a.b_c, type: keyword, description: d}, {name: a_b.c, type: keyword, description: d}]", "collides"},
		{"nullable keyword", "fields: [{name: a, type: keyword, nullable: true, description: d}]", "nullable applies"},
		{"array map", "fields: [{name: a, type: flattened, array: true, description: d}]", "cannot be an array"},
		{"bad name", "fields: [{name: A.b, type: keyword, description: d}]", "dotted lower-case"},
		{"no description", "fields: [{name: a, type: keyword}]", "description required"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := gen.Parse([]byte(base + tc.fields))
			if err == nil || !bytes.Contains([]byte(err.Error()), []byte(tc.want)) {
				t.Fatalf("got %v, want error containing %q", err, tc.want)
			}
		})
	}
}
