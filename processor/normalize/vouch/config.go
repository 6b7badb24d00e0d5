package vouch

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/crowsnest-siem/crowsnest/bus/topology"
	"github.com/crowsnest-siem/crowsnest/daemon/config"
)

// Action is what happens to an event with spoofed fields.
type Action string

// Actions.
const (
	// Mark lists the fields in crowsnest.spoofed_fields and keeps the event
	// (the default): the claim is evidence too.
	Mark Action = "mark"
	// Reject sends the record to the dead-letter stream (spoofed_metadata).
	Reject Action = "reject"
)

// Unlisted is what a collector no binding matches can vouch for.
type Unlisted string

// Unlisted policies.
const (
	// TrustUnlisted checks nothing of collectors without a binding (the
	// default: vouching is opt-in, binding by binding).
	TrustUnlisted Unlisted = "trust"
	// MarkUnlisted marks every checked field an unlisted collector sets.
	MarkUnlisted Unlisted = "mark"
)

// Config is what a user writes under the processor's normalize.vouch key.
type Config struct {
	// Collectors binds collector ids to where they run; the first binding
	// whose pattern matches a collector applies.
	Collectors []Binding `yaml:"collectors"`
	// OnSpoof is mark (default) or reject.
	OnSpoof Action `yaml:"on_spoof"`
	// Unlisted is trust (default) or mark.
	Unlisted Unlisted `yaml:"unlisted"`
}

// Binding says where the collectors matching Collector run.
type Binding struct {
	// Collector is a collector id, or a pattern: "*" matches any run of
	// characters, "{node}" and "{namespace}" capture the node or namespace
	// the collector runs in.
	Collector string `yaml:"collector"`
	// Node is the node the collectors run on, when the pattern does not
	// capture it. Empty and not captured: the binding says nothing about
	// nodes.
	Node string `yaml:"node"`
	// Namespace is the namespace they run in, likewise.
	Namespace string `yaml:"namespace"`
}

// NewDefaultConfig binds nothing: every collector is trusted.
func NewDefaultConfig() Config {
	return Config{OnSpoof: Mark, Unlisted: TrustUnlisted}
}

// Validate reports every invalid field with its key path.
func (c Config) Validate() error {
	var errs []error
	switch c.OnSpoof {
	case Mark, Reject, "":
	default:
		errs = append(errs, config.FieldError("on_spoof", "must be %q or %q, got %q", Mark, Reject, c.OnSpoof))
	}
	switch c.Unlisted {
	case TrustUnlisted, MarkUnlisted, "":
	default:
		errs = append(errs, config.FieldError("unlisted", "must be %q or %q, got %q", TrustUnlisted, MarkUnlisted, c.Unlisted))
	}
	for i, b := range c.Collectors {
		if _, err := b.compile(); err != nil {
			errs = append(errs, config.FieldError(fmt.Sprintf("collectors[%d]", i), "%w", err))
		}
	}
	return errors.Join(errs...)
}

// rule is a compiled Binding.
type rule struct {
	re             *regexp.Regexp // nil: a literal collector id
	literal        string
	node, ns       string // fixed places (sanitized)
	nodeAt, nsAt   int    // capture group indexes; 0: none
	bindsNode, bNS bool
}

func (b Binding) compile() (rule, error) {
	var r rule
	p := b.Collector
	if p == "" {
		return r, errors.New("collector: must be set")
	}
	if strings.Contains(p, "{node}") && b.Node != "" {
		return r, errors.New("node: the pattern captures {node}; set one or the other")
	}
	if strings.Contains(p, "{namespace}") && b.Namespace != "" {
		return r, errors.New("namespace: the pattern captures {namespace}; set one or the other")
	}
	if b.Node == "" && b.Namespace == "" && !strings.Contains(p, "{") {
		return r, fmt.Errorf("collector %q: binds neither a node nor a namespace", p)
	}
	r.node, r.ns = sanitize(b.Node), sanitize(b.Namespace)
	r.bindsNode, r.bNS = b.Node != "", b.Namespace != ""
	if !strings.ContainsAny(p, "*{") {
		if err := topology.ValidateToken(p); err != nil {
			return r, fmt.Errorf("collector: %w", err)
		}
		r.literal = p
		return r, nil
	}
	var expr strings.Builder
	expr.WriteString("^")
	group := 0
	for rest := p; rest != ""; {
		switch {
		case strings.HasPrefix(rest, "{node}"):
			if r.nodeAt != 0 {
				return r, fmt.Errorf("collector %q: {node} twice", p)
			}
			group++
			r.nodeAt, r.bindsNode = group, true
			expr.WriteString("(.+?)")
			rest = rest[len("{node}"):]
		case strings.HasPrefix(rest, "{namespace}"):
			if r.nsAt != 0 {
				return r, fmt.Errorf("collector %q: {namespace} twice", p)
			}
			group++
			r.nsAt, r.bNS = group, true
			expr.WriteString("(.+?)")
			rest = rest[len("{namespace}"):]
		case rest[0] == '*':
			expr.WriteString(".*?")
			rest = rest[1:]
		case rest[0] == '{':
			return r, fmt.Errorf("collector %q: unknown placeholder (want {node} or {namespace})", p)
		default:
			i := strings.IndexAny(rest, "*{")
			if i < 0 {
				i = len(rest)
			}
			lit := rest[:i]
			if err := topology.ValidateToken(lit); err != nil {
				return r, fmt.Errorf("collector %q: %w", p, err)
			}
			expr.WriteString(regexp.QuoteMeta(lit))
			rest = rest[i:]
		}
	}
	expr.WriteString("$")
	re, err := regexp.Compile(expr.String())
	if err != nil {
		return r, fmt.Errorf("collector %q: %w", p, err)
	}
	r.re = re
	return r, nil
}

// sanitize is how names compare: as the subject tokens they become.
func sanitize(name string) string {
	if name == "" {
		return ""
	}
	return topology.SanitizeToken(name)
}
