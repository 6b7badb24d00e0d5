package config_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/crowsnest-siem/crowsnest/daemon/config"
)

func TestValidateAll(t *testing.T) {
	valid := func() testConfig {
		c := newTestConfig()
		c.Routes = map[string]routeConfig{"audit": {Subject: "s"}}
		return c
	}
	tests := []struct {
		name   string
		prefix string
		mutate func(*testConfig)
		want   []string // the joined error's lines, in order
	}{
		{name: "valid", mutate: func(*testConfig) {}},
		{
			name: "root, nested pointer receiver, nested value receiver, in field order",
			mutate: func(c *testConfig) {
				c.Tags = []string{"a", "b", "c", "d"}
				c.NATS.URL = "http://x"
				c.NATS.Timeout = 0
				c.Sinks.File.Dir = ""
			},
			want: []string{
				"tags: at most 3, got 4",
				`nats.url: want a nats:// URL, got "http://x"`,
				"nats.timeout: must be positive",
				"sinks.file.dir: must not be empty: no directory",
			},
		},
		{
			name:   "prefix",
			prefix: "processor",
			mutate: func(c *testConfig) { c.Sinks.File.Dir = "" },
			want:   []string{"processor.sinks.file.dir: must not be empty: no directory"},
		},
		{
			name:   "map elements, sorted, with a plain error located at the element",
			mutate: func(c *testConfig) { c.Routes = map[string]routeConfig{"z": {}, "a": {}} },
			want:   []string{"routes.a: a route needs a subject", "routes.z: a route needs a subject"},
		},
		{
			name:   "optional section",
			mutate: func(c *testConfig) { c.Limits = &limitsConfig{Rate: -1} },
			want:   []string{"limits.rate: must not be negative"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := valid()
			tt.mutate(&c)
			err := config.ValidateAll(tt.prefix, &c)
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("ValidateAll = %v; want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("ValidateAll = nil; want %q", tt.want)
			}
			if got := strings.Split(err.Error(), "\n"); strings.Join(got, "|") != strings.Join(tt.want, "|") {
				t.Errorf("ValidateAll =\n%s\nwant\n%s", err, strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestValidateAllErrorsStayInspectable(t *testing.T) {
	c := newTestConfig()
	c.Sinks.File.Dir = ""
	err := config.ValidateAll("", c) // a value, not a pointer: still reaches pointer-receiver Validates
	if !errors.Is(err, errNoDir) {
		t.Errorf("errors.Is(%v, errNoDir) = false", err)
	}
	ve, ok := errors.AsType[*config.ValidationError](err)
	if !ok || ve.Path != "sinks.file.dir" {
		t.Errorf("ValidationError = %+v, %v; want path sinks.file.dir", ve, ok)
	}

	c = newTestConfig()
	c.NATS.Timeout = 0
	if err := config.ValidateAll("", c); err == nil || !strings.Contains(err.Error(), "nats.timeout") {
		t.Errorf("ValidateAll on a value skipped a pointer-receiver Validate: %v", err)
	}
}

func TestValidateAllNil(t *testing.T) {
	var c *testConfig
	if err := config.ValidateAll("x", c); err != nil {
		t.Errorf("ValidateAll(nil pointer) = %v", err)
	}
	if err := config.ValidateAll("x", nil); err != nil {
		t.Errorf("ValidateAll(nil) = %v", err)
	}
}

func TestFieldError(t *testing.T) {
	base := errors.New("boom")
	err := config.FieldError("a.b", "bad %d: %w", 3, base)
	if err.Error() != "a.b: bad 3: boom" || !errors.Is(err, base) {
		t.Errorf("FieldError = %q, Is(base) = %v", err, errors.Is(err, base))
	}
	if got := config.FieldError("", "top").Error(); got != "top" {
		t.Errorf("FieldError with no path = %q", got)
	}
}
