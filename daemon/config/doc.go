// Package config loads crowsnest's YAML configuration: one format for every
// stage, decoded strictly, then overridden from the environment.
//
// The recipe every binary follows:
//
//	cfg := mystage.NewDefaultConfig()        // defaults first
//	if err := config.Load(path, &cfg); err != nil {
//		return err                           // "crowsnest.yaml:12: unknown field ..."
//	}
//	if err := config.ValidateAll("", &cfg); err != nil {
//		return err                           // "sinks.file.dir: must not be empty"
//	}
//
// Decoding is strict: an unknown key, a value of the wrong type, a duplicate key
// or a second YAML document is an error naming the file, the line and the key
// path, and an unknown key comes with the closest known one ("did you mean").
// Keys absent from the file keep the defaults the caller put in the struct.
//
// After the file, environment variables named CROWSNEST_<PATH> override scalar
// fields, where PATH is the key path uppercased with "__" between levels
// (CROWSNEST_SINKS__FILE__DIR, CROWSNEST_NATS__URL). A variable with the prefix
// that names no field is an error, so a typo is never silently ignored; names
// that are not configuration (CROWSNEST_CONFIG, CROWSNEST_TEST_*, CROWSNEST_DEV_*) are allowed
// by default and more can be added with [WithEnvAllow].
//
// Field names come from yaml struct tags, exactly as go.yaml.in/yaml/v3 reads
// them (",inline" included). Keys should be snake_case: for the environment,
// '-' and '.' in a key become '_'.
//
// Secrets are [Secret] values, which print, log and marshal as [REDACTED]. To
// let a secret come from a mounted file, give the component a sibling
// "<name>_file" key and resolve the pair with [ResolveSecret]:
//
//	type AuthConfig struct {
//		Password     config.Secret `yaml:"password"`
//		PasswordFile string        `yaml:"password_file"`
//	}
//	pw, err := config.ResolveSecret(c.Password, c.PasswordFile)
//
// Validation is separate from decoding: each Config type implements
// [Validator] for its own fields, and [ValidateAll] visits the whole tree,
// prefixing every [FieldError] with its key path.
//
// This package reflects over configuration structs; it is for start-up, never
// for the per-event path. It holds no global state and reads the environment
// only inside Load and Decode (or not at all, with [WithEnviron]).
package config
