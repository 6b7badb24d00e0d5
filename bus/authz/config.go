package authz

import (
	"errors"
	"fmt"

	"github.com/crowsnest-siem/crowsnest/bus/internal/fielderr"
	"github.com/crowsnest-siem/crowsnest/bus/topology"
)

// ConfigKey is the key this section sits under in crowsnest's config file.
const ConfigKey = "nats_auth"

// Config lists the identities to generate. The processor and the admin
// always exist; collectors and sinks are listed by id and name.
type Config struct {
	// Collectors are collector ids: the <collector> token of
	// crowsnest.raw.<source>.<collector>.<key> (publish.Config.CollectorID),
	// one identity each so that one compromised node cannot publish as another.
	Collectors []string `yaml:"collectors"`
	// NodeCollectors adds one identity, node-collectors, shared by collectors
	// whose ids are not known in advance: a Kubernetes DaemonSet, whose
	// collector id is its node's name (collector_id_from_node) and whose pods
	// all mount one Secret. It may publish under any collector id except
	// those in Collectors (they have identities of their own: the audit
	// webhook, sidecars), so a compromised node can forge other nodes'
	// records but never theirs (docs/SECURITY.md, residual risks).
	NodeCollectors bool `yaml:"node_collectors"`
	// Sinks are sink names: each reads through its durable sink-<name>.
	Sinks []string `yaml:"sinks"`
	// Partitions is topology.partitions: the processor may use the consumers
	// processor-p0 .. processor-p<partitions-1> of each raw stream, no other.
	// 0 means topology.DefaultPartitions.
	Partitions int `yaml:"partitions"`
}

// partitions returns Partitions with the default applied.
func (c Config) partitions() int {
	if c.Partitions == 0 {
		return topology.DefaultPartitions
	}
	return c.Partitions
}

// Validate reports every invalid field, joined, each naming its key path.
// Ids and names must be what topology.SanitizeToken makes of them (lowercase
// ASCII letters, digits, '-', '_'): they become subject tokens, inbox
// prefixes and seed file names.
func (c Config) Validate() error {
	var errs []error
	check := func(field string, names []string) {
		seen := map[string]bool{}
		for i, n := range names {
			path := fmt.Sprintf("%s[%d]", field, i)
			switch {
			case topology.ValidateToken(n) != nil || topology.SanitizeToken(n) != n:
				errs = append(errs, fielderr.New(path, "%q: want lowercase letters, digits, '-' and '_' only (e.g. %q)", n, topology.SanitizeToken(n)))
			case seen[n]:
				errs = append(errs, fielderr.New(path, "%q listed twice", n))
			}
			seen[n] = true
		}
	}
	check("collectors", c.Collectors)
	check("sinks", c.Sinks)
	if c.Partitions < 0 || c.Partitions > topology.MaxPartitions {
		errs = append(errs, fielderr.New("partitions", "must be 0 (the default, %d) or 1..%d like topology.partitions, got %d", topology.DefaultPartitions, topology.MaxPartitions, c.Partitions))
	}
	if len(c.Collectors) == 0 && len(c.Sinks) == 0 && !c.NodeCollectors {
		errs = append(errs, fielderr.New("", "no collectors, node_collectors or sinks: list at least one"))
	}
	return errors.Join(errs...)
}
