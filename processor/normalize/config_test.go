package normalize_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/crowsnest-siem/crowsnest/daemon/config"
	"github.com/crowsnest-siem/crowsnest/processor/normalize"
)

func TestDefaultConfigIsValid(t *testing.T) {
	cfg := normalize.NewDefaultConfig()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if cfg.MaxRecordBytes != config.MiB || cfg.MaxDepth != 64 || !cfg.KeepOriginal || cfg.MaxOriginalBytes != 16*config.KiB ||
		cfg.InvalidUTF8 != normalize.UTF8Reject || cfg.MaxMapEntries != 64 || cfg.MaxJSONBytes != 32*config.KiB {
		t.Errorf("defaults changed: %+v", cfg)
	}
}

func TestConfigValidateNamesEveryBadField(t *testing.T) {
	cfg := normalize.Config{
		MaxRecordBytes:    0,
		MaxDepth:          5000,
		KeepOriginal:      true,
		MaxOriginalBytes:  0,
		InvalidUTF8:       "drop",
		MaxMapEntries:     0,
		TrustedRegistries: normalize.TrustedRegistries{"registry.k8s.io", "nginx", "ghcr.io/org/app:1.0"},
	}
	err := config.ValidateAll("normalize", &cfg)
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{
		"normalize.max_record_bytes:", "normalize.max_depth:", "normalize.max_original_bytes:",
		"normalize.invalid_utf8:", "normalize.max_map_entries:",
		"normalize.trusted_registries[1]:", "normalize.trusted_registries[2]:",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "trusted_registries[0]") {
		t.Errorf("a valid entry reported: %v", err)
	}
	var ve *config.ValidationError
	if !errors.As(err, &ve) {
		t.Errorf("not a config.ValidationError: %T", err)
	}
}

func TestConfigDecodeStrict(t *testing.T) {
	good := []byte("max_record_bytes: 2MiB\nmax_depth: 32\ninvalid_utf8: replace\ntrusted_registries: [registry.k8s.io, docker.io/library]\n")
	cfg := normalize.NewDefaultConfig()
	if err := config.Decode(good, "normalize.yaml", &cfg, config.WithEnviron(nil)); err != nil {
		t.Fatal(err)
	}
	if cfg.MaxRecordBytes != 2*config.MiB || cfg.MaxDepth != 32 || cfg.InvalidUTF8 != normalize.UTF8Replace || len(cfg.TrustedRegistries) != 2 {
		t.Errorf("decoded %+v", cfg)
	}
	if !cfg.KeepOriginal || cfg.MaxMapEntries != 64 {
		t.Errorf("keys absent from the file lost their defaults: %+v", cfg)
	}
	typo := []byte("max_recrod_bytes: 2MiB\n")
	cfg = normalize.NewDefaultConfig()
	err := config.Decode(typo, "normalize.yaml", &cfg, config.WithEnviron(nil))
	if err == nil || !strings.Contains(err.Error(), "max_record_bytes") {
		t.Errorf("a typo must fail and suggest the key: %v", err)
	}
}

func TestRegistry(t *testing.T) {
	cfg := normalize.NewDefaultConfig()
	f := normalize.Factory{Source: "x", New: func(normalize.Config) (normalize.Mapper, error) { return nil, errors.New("boom") }}
	if _, err := normalize.NewRegistry(cfg, f); err == nil || !strings.Contains(err.Error(), "source x: boom") {
		t.Errorf("constructor error not reported: %v", err)
	}
	ok := normalize.Factory{Source: "y", New: func(normalize.Config) (normalize.Mapper, error) { return nil, nil }}
	if _, err := normalize.NewRegistry(cfg, ok, ok); err == nil || !strings.Contains(err.Error(), "registered twice") {
		t.Errorf("duplicate not reported: %v", err)
	}
	bad := cfg
	bad.MaxDepth = 0
	if _, err := normalize.NewRegistry(bad, ok); err == nil {
		t.Error("invalid config accepted")
	}
}

// TestJSONMappingDecode: a json mapping decodes strictly (a misspelled key
// fails with a suggestion) and its field names are checked on load.
func TestJSONMappingDecode(t *testing.T) {
	good := []byte(`json:
  mappings:
    - source: webapp
      id_field: request_id
      timestamp: {field: ts, layout: unix_ms}
      fields:
        - {from: user.name, to: user.name}
        - {from: ts_start, to: event.start, layout: rfc3339}
      set:
        - {to: ocsf.class_uid, value: "3002"}
`)
	cfg := normalize.NewDefaultConfig()
	if err := config.Decode(good, "normalize.yaml", &cfg, config.WithEnviron(nil)); err != nil {
		t.Fatal(err)
	}
	if err := config.ValidateAll("normalize", &cfg); err != nil {
		t.Fatal(err)
	}
	if m := cfg.JSON.Mappings; len(m) != 1 || m[0].Timestamp.Layout != "unix_ms" || len(m[0].Fields) != 2 || m[0].Set[0].Value != "3002" {
		t.Errorf("decoded %+v", cfg.JSON)
	}
	cfg = normalize.NewDefaultConfig()
	err := config.Decode([]byte("json:\n  mappings:\n    - source: a\n      fields: [{form: x, to: message}]\n"), "normalize.yaml", &cfg, config.WithEnviron(nil))
	if err == nil || !strings.Contains(err.Error(), `"from"`) {
		t.Errorf("a misspelled key must fail and suggest the key: %v", err)
	}
	cfg = normalize.NewDefaultConfig()
	if err := config.Decode([]byte("json:\n  mappings:\n    - source: a\n      fields: [{from: x, to: user.nme}]\n"), "normalize.yaml", &cfg, config.WithEnviron(nil)); err != nil {
		t.Fatal(err)
	}
	err = config.ValidateAll("normalize", &cfg)
	if err == nil || !strings.Contains(err.Error(), `normalize.json.mappings[0].fields[0].to: no event field "user.nme" (did you mean user.name?)`) {
		t.Errorf("a field typo must fail with its path: %v", err)
	}
}
