package partition

import (
	"errors"
	"os"
	"time"

	"github.com/crowsnest-siem/crowsnest/daemon/config"
)

// Config is what a user writes under processor.partitions.
type Config struct {
	// ReplicaID names this replica in the membership bucket: letters,
	// digits, '-' and '_', at most 64 bytes. Two live replicas must not
	// share it (a replica that sees another use its id logs an error). A
	// replica restarted under the same id takes its partitions back at once
	// instead of waiting for its old lease to expire. Empty (the default):
	// the host name, sanitized — unique per pod in Kubernetes; set it when
	// several processors share a host.
	ReplicaID string `yaml:"replica_id"`
	// Lease is how long a replica that stopped renewing (killed, cut off
	// from NATS) keeps its partitions before the others take them over. It
	// is renewed every third of it. Shorter: faster take-over of a dead
	// replica's partitions; longer: fewer needless hand-overs when NATS is
	// slow. Give every replica the same lease: it is the bucket's TTL.
	Lease time.Duration `yaml:"lease"`
}

// NewDefaultConfig returns the host name as replica id (at start) and a
// 10 s lease.
func NewDefaultConfig() Config {
	return Config{Lease: 10 * time.Second}
}

// Validate reports every invalid field.
func (c Config) Validate() error {
	var errs []error
	if c.ReplicaID != "" {
		if err := validID(c.ReplicaID); err != nil {
			errs = append(errs, config.FieldError("replica_id", "%w (try %q)", err, sanitizeID(c.ReplicaID)))
		}
	}
	if c.Lease < time.Second {
		errs = append(errs, config.FieldError("lease", "must be at least 1s (e.g. 10s), got %s", c.Lease))
	}
	return errors.Join(errs...)
}

// defaultID is the host name, made an id.
func defaultID() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "processor"
	}
	return sanitizeID(host)
}

var errBadID = errors.New("must be 1 to 64 letters, digits, '-' or '_'")

func validID(id string) error {
	if id == "" || len(id) > 64 {
		return errBadID
	}
	for i := 0; i < len(id); i++ {
		if !idByte(id[i]) {
			return errBadID
		}
	}
	return nil
}

func idByte(b byte) bool {
	return b == '-' || b == '_' || b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9'
}

func sanitizeID(id string) string {
	b := []byte(id)
	for i := range b {
		if !idByte(b[i]) {
			b[i] = '_'
		}
	}
	if len(b) > 64 {
		b = b[:64]
	}
	if len(b) == 0 {
		return "processor"
	}
	return string(b)
}
