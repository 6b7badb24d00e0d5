package normalize

import (
	"errors"
	"strings"

	"github.com/crowsnest-siem/crowsnest/daemon/config"
	"github.com/crowsnest-siem/crowsnest/processor/normalize/vouch"
)

// UTF8Policy says what to do with a record that is not valid UTF-8.
type UTF8Policy string

const (
	// UTF8Reject sends the record to the dead-letter stream (invalid_utf8).
	UTF8Reject UTF8Policy = "reject"
	// UTF8Replace replaces each invalid byte sequence with U+FFFD and
	// normalizes the result; event.original then holds the replaced text.
	UTF8Replace UTF8Policy = "replace"
)

// Upper bounds Validate enforces, so that a typo cannot turn a limit off.
const (
	maxRecordBytesCeiling = 64 * config.MiB
	// maxDepthCeiling is also the size of the scanner's fixed nesting stack.
	maxDepthCeiling   = 1024
	maxEntriesCeiling = 100_000
)

// Config is what a user writes under the processor's `normalize:` key.
type Config struct {
	// MaxRecordBytes rejects larger records (too_large) before parsing.
	MaxRecordBytes config.ByteSize `yaml:"max_record_bytes"`
	// MaxDepth rejects records whose objects and arrays nest deeper
	// (too_deep), measured in one scan before gjson sees the bytes.
	MaxDepth int `yaml:"max_depth"`
	// KeepOriginal keeps the raw record in event.original.
	KeepOriginal bool `yaml:"keep_original"`
	// MaxOriginalBytes caps event.original; a longer record is cut (at a
	// character boundary) and crowsnest.truncated is set.
	MaxOriginalBytes config.ByteSize `yaml:"max_original_bytes"`
	// InvalidUTF8 is reject (default) or replace.
	InvalidUTF8 UTF8Policy `yaml:"invalid_utf8"`
	// MaxMapEntries caps every map and list taken from a record (labels,
	// annotations, Falco output fields, images, host paths, groups, source
	// IPs); entries beyond it are dropped and crowsnest.truncated is set.
	MaxMapEntries int `yaml:"max_map_entries"`
	// MaxJSONBytes caps each raw JSON object kept verbatim (Kubernetes
	// requestObject/responseObject). A larger object is dropped whole, so the
	// document stays valid JSON, and crowsnest.truncated is set.
	MaxJSONBytes config.ByteSize `yaml:"max_json_bytes"`
	// TrustedRegistries lists the registries (and repository prefixes) whose
	// images are trusted; it sets crowsnest.image.trusted. Empty: no opinion,
	// the field is left unset.
	TrustedRegistries TrustedRegistries `yaml:"trusted_registries"`
	// JSON is the mapping of the generic json source (JSONConfig).
	JSON JSONConfig `yaml:"json"`
	// Vouch binds collectors to the node or namespace they run in, and
	// marks (or rejects) what an event claims beyond that identity
	// (crowsnest.spoofed_fields).
	Vouch vouch.Config `yaml:"vouch"`
}

// NewDefaultConfig returns the defaults: 1 MiB records, depth 64, original
// kept up to 16 KiB, invalid UTF-8 rejected, 64 map entries, 32 KiB objects.
func NewDefaultConfig() Config {
	return Config{
		MaxRecordBytes:   1 * config.MiB,
		MaxDepth:         64,
		KeepOriginal:     true,
		MaxOriginalBytes: 16 * config.KiB,
		InvalidUTF8:      UTF8Reject,
		MaxMapEntries:    64,
		MaxJSONBytes:     32 * config.KiB,
		Vouch:            vouch.NewDefaultConfig(),
	}
}

// Validate reports every invalid field, each with its key path.
func (c *Config) Validate() error {
	var errs []error
	if c.MaxRecordBytes == 0 || c.MaxRecordBytes > maxRecordBytesCeiling {
		errs = append(errs, config.FieldError("max_record_bytes", "must be between 1B and %s, got %s", maxRecordBytesCeiling, c.MaxRecordBytes))
	}
	if c.MaxDepth < 1 || c.MaxDepth > maxDepthCeiling {
		errs = append(errs, config.FieldError("max_depth", "must be between 1 and %d, got %d", maxDepthCeiling, c.MaxDepth))
	}
	if c.KeepOriginal && c.MaxOriginalBytes == 0 {
		errs = append(errs, config.FieldError("max_original_bytes", "must be at least 1B when keep_original is true"))
	}
	if c.MaxOriginalBytes > c.MaxRecordBytes && c.MaxRecordBytes > 0 {
		errs = append(errs, config.FieldError("max_original_bytes", "must not exceed max_record_bytes (%s), got %s", c.MaxRecordBytes, c.MaxOriginalBytes))
	}
	switch c.InvalidUTF8 {
	case UTF8Reject, UTF8Replace:
	default:
		errs = append(errs, config.FieldError("invalid_utf8", "must be %q or %q, got %q", UTF8Reject, UTF8Replace, c.InvalidUTF8))
	}
	if c.MaxMapEntries < 1 || c.MaxMapEntries > maxEntriesCeiling {
		errs = append(errs, config.FieldError("max_map_entries", "must be between 1 and %d, got %d", maxEntriesCeiling, c.MaxMapEntries))
	}
	if c.MaxJSONBytes > c.MaxRecordBytes && c.MaxRecordBytes > 0 {
		errs = append(errs, config.FieldError("max_json_bytes", "must not exceed max_record_bytes (%s), got %s", c.MaxRecordBytes, c.MaxJSONBytes))
	}
	if err := c.TrustedRegistries.validate(); err != nil {
		errs = append(errs, prefixPath("trusted_registries", err))
	}
	if err := c.JSON.validate(); err != nil {
		errs = append(errs, prefixPath("json", err))
	}
	if err := c.Vouch.Validate(); err != nil {
		errs = append(errs, prefixPath("vouch", err))
	}
	return errors.Join(errs...)
}

// prefixPath puts prefix before the path of each FieldError in err.
func prefixPath(prefix string, err error) error {
	var out []error
	for _, e := range unjoin(err) {
		var ve *config.ValidationError
		if errors.As(e, &ve) {
			p := prefix
			if ve.Path != "" {
				if strings.HasPrefix(ve.Path, "[") {
					p += ve.Path
				} else {
					p += "." + ve.Path
				}
			}
			out = append(out, &config.ValidationError{Path: p, Err: ve.Err})
			continue
		}
		out = append(out, config.FieldError(prefix, "%w", e))
	}
	return errors.Join(out...)
}

func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}
