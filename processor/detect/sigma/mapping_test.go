package sigma

import (
	"github.com/crowsnest-siem/crowsnest/schemas"

	"strings"
	"testing"
)

// TestParseMapping: a mapping file is checked whole at load; every target
// must be a schema field used as its kind allows.
func TestParseMapping(t *testing.T) {
	entry := func(fields string) string {
		return "logsources:\n  - name: x\n    match: [{product: linux}]\n    sources: [auditd]\n    fields:\n" + fields
	}
	for _, tc := range []struct {
		name, yaml, wantErr string
	}{
		{"plain and long forms", entry("      exe: process.executable\n      a0: {field: process.args, index: 0, or: [auditd.data.a0]}\n"), ""},
		{"unknown target", entry("      exe: process.nonesuch\n"), `no field "process.nonesuch"`},
		{"index on a scalar", entry("      exe: {field: process.executable, index: 0}\n"), "index applies to arrays of strings"},
		{"or to an unknown field", entry("      a0: {field: process.args, index: 0, or: [auditd.nonesuch]}\n"), `or: unsupported field:auditd.nonesuch`},
		{"or to a number", entry("      pid: {field: process.executable, or: [process.pid]}\n"), "or joins text fields only"},
		{"or from a number", entry("      pid: {field: process.pid, or: [process.executable]}\n"), "or joins text fields only"},
		{"unknown key", entry("      exe: {field: process.executable, also: [file.path]}\n"), "field also not found"},
		{"no sources", "logsources:\n  - name: x\n    match: [{product: linux}]\n", "match and sources are required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseMapping([]byte(tc.yaml))
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("rejected: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

// An or alternative is read only when the field's own value does not
// match, and a rule describes both.
func TestMappingOr(t *testing.T) {
	m, err := ParseMapping([]byte("logsources:\n  - name: x\n    match: [{product: linux, service: auditd}]\n    sources: [auditd]\n    fields:\n      a0: {field: process.args, index: 0, or: [auditd.data.a0]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	ls, _ := m.Logsource(Logsource{Product: "linux", Service: "auditd"})
	a, err := ls.resolve("a0")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := a.describe(), `process.args[0]|auditd.data["a0"]`; got != want {
		t.Errorf("describe() = %s, want %s", got, want)
	}
	for _, tc := range []struct {
		args []string
		data map[string]string
		want []string
	}{
		{[]string{"sysctl", "-w"}, map[string]string{"a0": "55e3f4a1b2c0"}, []string{"sysctl", "55e3f4a1b2c0"}},
		{nil, map[string]string{"a0": "5"}, []string{"5"}},
		{[]string{"id"}, nil, []string{"id"}},
		{nil, nil, nil},
	} {
		var ev schemas.Event
		ev.Process.Args, ev.Auditd.Data = tc.args, tc.data
		var got []string
		a.any(&ev, func(v fval) bool { got = append(got, v.s); return false })
		if strings.Join(got, ",") != strings.Join(tc.want, ",") {
			t.Errorf("args %v, data %v: values %v, want %v", tc.args, tc.data, got, tc.want)
		}
	}
}
