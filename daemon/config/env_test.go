package config_test

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/crowsnest-siem/crowsnest/daemon/config"
)

func TestEnvOverrides(t *testing.T) {
	const file = "routes:\n  audit:\n    id: a\n    subject: s\nlabels:\n  team: secops\n"
	tests := []struct {
		env   string
		check func(c testConfig) any // returns the field the variable set
		want  any
	}{
		{"CROWSNEST_NATS__URL=nats://env:4222", func(c testConfig) any { return c.NATS.URL }, "nats://env:4222"},
		{"CROWSNEST_NATS__URL=", func(c testConfig) any { return c.NATS.URL }, ""},
		{"CROWSNEST_NATS__TIMEOUT=1m30s", func(c testConfig) any { return c.NATS.Timeout }, 90 * time.Second},
		{"CROWSNEST_NATS__MAX_RECONNECTS=-1", func(c testConfig) any { return c.NATS.MaxReconnects }, -1},
		{"CROWSNEST_NATS__RATIO=0.5", func(c testConfig) any { return c.NATS.Ratio }, 0.5},
		{"CROWSNEST_NATS__TLS=true", func(c testConfig) any { return c.NATS.TLS }, true},
		{"CROWSNEST_NATS__PASSWORD=s3cret", func(c testConfig) any { return c.NATS.Password.Value() }, "s3cret"},
		{"CROWSNEST_SINKS__FILE__DIR=/x", func(c testConfig) any { return c.Sinks.File.Dir }, "/x"},
		{"CROWSNEST_SINKS__FILE__PORT=9000", func(c testConfig) any { return c.Sinks.File.Port }, uint16(9000)},
		{"CROWSNEST_SINKS__FILE__MAX_BYTES=10GiB", func(c testConfig) any { return c.Sinks.File.MaxBytes }, 10 * config.GiB},
		{"CROWSNEST_SINKS__FILE__LEVEL=debug", func(c testConfig) any { return c.Sinks.File.Level }, levelDebug},
		{"CROWSNEST_TAGS=prod, eu-west-1 ,x", func(c testConfig) any { return c.Tags }, []string{"prod", "eu-west-1", "x"}},
		{"CROWSNEST_TAGS=", func(c testConfig) any { return c.Tags }, []string{}},
		{"CROWSNEST_LIMITS__RATE=2.5", func(c testConfig) any { return c.Limits.Rate }, float32(2.5)},
		{"CROWSNEST_LIMITS__RETRIES=1,2,4", func(c testConfig) any { return c.Limits.Retries }, []uint32{1, 2, 4}},
		{"CROWSNEST_ROUTES__AUDIT__SUBJECT=t", func(c testConfig) any { return c.Routes["audit"].Subject }, "t"},
		{"CROWSNEST_ROUTES__AUDIT__ID=b", func(c testConfig) any { return c.Routes["audit"].ID }, "b"}, // inline field
		{"CROWSNEST_LABELS__TEAM=blue", func(c testConfig) any { return c.Labels["team"] }, "blue"},
	}
	for _, tt := range tests {
		t.Run(tt.env, func(t *testing.T) {
			cfg := newTestConfig()
			var applied []config.EnvOverride
			err := config.Decode([]byte(file), "c.yaml", &cfg,
				config.WithEnviron([]string{tt.env, "PATH=/bin", "OTHER_NATS__URL=x"}),
				config.OnEnvOverride(func(o config.EnvOverride) { applied = append(applied, o) }))
			if err != nil {
				t.Fatal(err)
			}
			if got := tt.check(cfg); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %#v, want %#v", got, tt.want)
			}
			name, value, _ := strings.Cut(tt.env, "=")
			if len(applied) != 1 || applied[0].Var != name {
				t.Fatalf("applied = %+v; want one override for %s", applied, name)
			}
			if strings.Contains(name, "PASSWORD") {
				value = "[REDACTED]"
			}
			if applied[0].Value != value {
				t.Errorf("reported value %q, want %q", applied[0].Value, value)
			}
		})
	}
}

func TestEnvOverridesFile(t *testing.T) {
	cfg := newTestConfig()
	var applied []config.EnvOverride
	err := config.Decode([]byte("nats:\n  url: nats://file:4222\n  timeout: 3s\n"), "c.yaml", &cfg,
		config.WithEnviron([]string{"CROWSNEST_NATS__URL=nats://env:4222", "CROWSNEST_LIMITS__RATE=1"}),
		config.OnEnvOverride(func(o config.EnvOverride) { applied = append(applied, o) }))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.NATS.URL != "nats://env:4222" || cfg.NATS.Timeout != 3*time.Second {
		t.Errorf("nats = %+v; want the env URL and the file timeout", cfg.NATS)
	}
	if cfg.Limits == nil || cfg.Limits.Rate != 1 {
		t.Errorf("limits = %+v; want a section allocated for the override", cfg.Limits)
	}
	want := []config.EnvOverride{
		{Var: "CROWSNEST_LIMITS__RATE", Path: "limits.rate", Value: "1"},
		{Var: "CROWSNEST_NATS__URL", Path: "nats.url", Value: "nats://env:4222"},
	}
	if !reflect.DeepEqual(applied, want) {
		t.Errorf("applied = %+v\nwant %+v (sorted by name)", applied, want)
	}
}

func TestEnvErrors(t *testing.T) {
	tests := []struct {
		env  []string
		opts []config.Option
		want []string // substrings, each must appear
	}{
		{env: []string{"CROWSNEST_NATS__URLL=x"},
			want: []string{"env CROWSNEST_NATS__URLL: no config field nats.urll (did you mean CROWSNEST_NATS__URL?)"}},
		{env: []string{"CROWSNEST_NAST__URL=x"},
			want: []string{"env CROWSNEST_NAST__URL: no config field nast (did you mean CROWSNEST_NATS__URL?)"}},
		{env: []string{"CROWSNEST_NATS_URL=x"},
			want: []string{"env CROWSNEST_NATS_URL: no config field nats_url (did you mean CROWSNEST_NATS__URL? levels are separated by a double underscore)"}},
		{env: []string{"CROWSNEST_BOGUS=x"},
			want: []string{"env CROWSNEST_BOGUS: no config field bogus"}},
		{env: []string{"CROWSNEST_NATS=x"},
			want: []string{"env CROWSNEST_NATS: nats is a section, not a value: set its fields, as in CROWSNEST_NATS__<FIELD>"}},
		{env: []string{"CROWSNEST_NATS__URL__HOST=x"},
			want: []string{"env CROWSNEST_NATS__URL__HOST: nats.url is a single value"}},
		{env: []string{"CROWSNEST_NATS____URL=x"},
			want: []string{"env CROWSNEST_NATS____URL: the name has an empty level"}},
		{env: []string{"CROWSNEST_ROUTES__FALCO__SUBJECT=x"},
			want: []string{"env CROWSNEST_ROUTES__FALCO__SUBJECT: no entry routes.falco: the environment can override entries of routes that the file defines, not add them"}},
		{env: []string{"CROWSNEST_NATS__TIMEOUT=10"},
			want: []string{"env CROWSNEST_NATS__TIMEOUT: nats.timeout: want a duration with a unit"}},
		{env: []string{"CROWSNEST_NATS__MAX_RECONNECTS=many"},
			want: []string{"env CROWSNEST_NATS__MAX_RECONNECTS: nats.max_reconnects: want int"}},
		{env: []string{"CROWSNEST_NATS__TLS=maybe"},
			want: []string{"env CROWSNEST_NATS__TLS: nats.tls: want true or false"}},
		{env: []string{"CROWSNEST_SINKS__FILE__PORT=70000"},
			want: []string{"env CROWSNEST_SINKS__FILE__PORT: sinks.file.port: want uint16"}},
		{env: []string{"CROWSNEST_SINKS__FILE__MAX_BYTES=10XB"},
			want: []string{`env CROWSNEST_SINKS__FILE__MAX_BYTES: sinks.file.max_bytes: invalid byte size "10XB"`}},
		{env: []string{"CROWSNEST_LIMITS__RETRIES=1,x"},
			want: []string{"env CROWSNEST_LIMITS__RETRIES: limits.retries[1]: want uint32"}},
		{env: []string{"CROWSNEST_ROUTES=x"},
			want: []string{"env CROWSNEST_ROUTES: routes is a section"}},
		{ // every bad variable is reported, not only the first
			env:  []string{"CROWSNEST_A=1", "CROWSNEST_NATS__URL=ok", "CROWSNEST_B=2"},
			want: []string{"env CROWSNEST_A: no config field a", "env CROWSNEST_B: no config field b"}},
		{ // the prefix is an option, and the default allowlist follows it
			env:  []string{"CN_NATS__URLL=x", "CN_CONFIG=/etc/x.yaml", "CROWSNEST_BOGUS=ignored"},
			opts: []config.Option{config.WithEnvPrefix("CN_")},
			want: []string{"env CN_NATS__URLL: no config field nats.urll (did you mean CN_NATS__URL?)"}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.env, " "), func(t *testing.T) {
			cfg := newTestConfig()
			opts := append([]config.Option{config.WithEnviron(tt.env)}, tt.opts...)
			err := config.Decode([]byte("routes:\n  audit:\n    subject: s\n"), "c.yaml", &cfg, opts...)
			if err == nil {
				t.Fatal("Decode succeeded; want an error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\ndoes not contain %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "ignored") || strings.Count(err.Error(), "\n")+1 != len(tt.want) {
				t.Errorf("error %q: want exactly %d problem(s)", err, len(tt.want))
			}
		})
	}
}

func TestEnvAllowlist(t *testing.T) {
	env := []string{
		"CROWSNEST_CONFIG=/etc/crowsnest.yaml", // default: the config file's own path
		"CROWSNEST_TEST_CLICKHOUSE_URL=x",      // default: CROWSNEST_TEST_*
		"CROWSNEST_VERSION_CHECK=0",            // added exactly
		"CROWSNEST_DEBUG_PPROF=1",              // added by pattern
	}
	cfg := newTestConfig()
	var applied []config.EnvOverride
	err := config.Decode(nil, "c.yaml", &cfg, config.WithEnviron(env),
		config.WithEnvAllow("CROWSNEST_VERSION_CHECK", "CROWSNEST_DEBUG_*"),
		config.OnEnvOverride(func(o config.EnvOverride) { applied = append(applied, o) }))
	if err != nil {
		t.Fatal(err)
	}
	if len(applied) != 0 {
		t.Errorf("applied %+v; allowed names are not config", applied)
	}

	err = config.Decode(nil, "c.yaml", &cfg, config.WithEnviron([]string{"CROWSNEST_VERSION_CHECKS=0"}),
		config.WithEnvAllow("CROWSNEST_VERSION_CHECK"))
	if err == nil {
		t.Error("an exact allowlist entry matched a longer name")
	}
}

func TestEnvNotAppliedAfterFileError(t *testing.T) {
	cfg := newTestConfig()
	called := false
	err := config.Decode([]byte("nats: [x]\n"), "c.yaml", &cfg,
		config.WithEnviron([]string{"CROWSNEST_NATS__URL=nats://env:4222"}),
		config.OnEnvOverride(func(config.EnvOverride) { called = true }))
	if err == nil || called {
		t.Errorf("err = %v, override reported = %v; want the file error and no override", err, called)
	}
}

// TestEnvFromProcess covers the default: os.Environ.
func TestEnvFromProcess(t *testing.T) {
	t.Setenv("CROWSNEST_NATS__URL", "nats://process:4222")
	cfg := newTestConfig()
	if err := config.Decode(nil, "c.yaml", &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.NATS.URL != "nats://process:4222" {
		t.Errorf("url = %q", cfg.NATS.URL)
	}
}

func TestEnvAllowsDevServiceSettings(t *testing.T) {
	type cfg struct {
		Name string `yaml:"name"`
	}
	var c cfg
	err := config.Decode(nil, "x.yaml", &c, config.WithEnviron([]string{"CROWSNEST_DEV_ES_PORT=19200", "CROWSNEST_TEST_CLICKHOUSE_URL=http://x", "CROWSNEST_NAME=a"}))
	if err != nil || c.Name != "a" {
		t.Fatalf("got %v, %+v", err, c)
	}
}
