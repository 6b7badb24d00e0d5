package partition

import (
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*Config)
		want   []string
	}{
		{"defaults", func(*Config) {}, nil},
		{"generated id", func(c *Config) { c.ReplicaID = "" }, nil},
		{"given id", func(c *Config) { c.ReplicaID = "proc-1" }, nil},
		{"dotted id", func(c *Config) { c.ReplicaID = "a.b" }, []string{"replica_id: must be 1 to 64", `try "a_b"`}},
		{"long id", func(c *Config) { c.ReplicaID = strings.Repeat("a", 65) }, []string{"replica_id"}},
		{"short lease", func(c *Config) { c.Lease = 100 * time.Millisecond }, []string{"lease: must be at least 1s"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := NewDefaultConfig()
			tt.modify(&c)
			err := c.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatal("valid")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%v does not mention %q", err, w)
				}
			}
		})
	}
	if id := defaultID(); validID(id) != nil {
		t.Errorf("default id %q is not valid", id)
	}
}
