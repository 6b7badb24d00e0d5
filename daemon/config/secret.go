package config

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
)

const redacted = "[REDACTED]"

// A Secret is a string from configuration that must not leak: a password, a
// token, an API key. It prints, logs and marshals (YAML, JSON, text) as
// [REDACTED] whatever the verb or encoder; only Value returns the content.
// It decodes from YAML and the environment like a string.
//
// Two holes come with being a string, and neither fits a config: fmt cannot
// call methods on unexported struct fields, so keep Secret fields exported;
// encoding/json writes a map key of a string type as is, so never key a map
// by a Secret. Converting with string(s) bypasses the redaction too: call
// Value, at the point of use.
type Secret string

// Value returns the secret itself.
func (s Secret) Value() string { return string(s) }

// IsSet reports whether the secret is non-empty, for validation and for
// logging whether credentials are configured without logging them.
func (s Secret) IsSet() bool { return s != "" }

// String returns [REDACTED].
func (Secret) String() string { return redacted }

// GoString returns [REDACTED], for %#v.
func (Secret) GoString() string { return redacted }

// Format writes [REDACTED] for every verb, so %x or %q cannot reveal it either.
func (Secret) Format(f fmt.State, _ rune) {
	// A write error reaches the caller of Printf through f; there is
	// nothing to return it to here.
	fmt.Fprint(f, redacted)
}

// LogValue redacts the secret in log/slog output.
func (Secret) LogValue() slog.Value { return slog.StringValue(redacted) }

// The encoders write an unset secret as empty, so that a dumped config
// (`crowsnest config defaults`) loads back without a literal "[REDACTED]"
// password; a set one is always [REDACTED].

// MarshalText returns [REDACTED], or nothing when unset.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.marshalled()), nil }

// MarshalJSON returns "[REDACTED]", or "" when unset.
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + s.marshalled() + `"`), nil }

// MarshalYAML returns [REDACTED], or "" when unset.
func (s Secret) MarshalYAML() (any, error) { return s.marshalled(), nil }

func (s Secret) marshalled() string {
	if s == "" {
		return ""
	}
	return redacted
}

// ResolveSecret implements the "<name>_file" convention: a component with a
// secret key and a sibling file key calls it with both. A set file replaces
// the value by the file's content, less one trailing newline (as "echo" and
// most secret mounts leave); setting both is an error, since one would be
// silently ignored. Neither set gives the empty Secret.
func ResolveSecret(value Secret, file string) (Secret, error) {
	if file == "" {
		return value, nil
	}
	if value != "" {
		return "", errors.New("both a secret and a secret file are set; set one")
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("read secret file: %w", err)
	}
	data = bytes.TrimSuffix(data, []byte("\n"))
	data = bytes.TrimSuffix(data, []byte("\r"))
	return Secret(data), nil
}
