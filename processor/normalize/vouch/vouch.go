package vouch

import (
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/crowsnest-siem/crowsnest/bus/topology"
	"github.com/crowsnest-siem/crowsnest/schemas"
)

// The fields a binding vouches for, by what it binds.
const (
	FieldHostName      = "host.name"
	FieldHostHostname  = "host.hostname"
	FieldCollectorNode = "crowsnest.collector.node"
	FieldNamespace     = "orchestrator.namespace"
)

// maxCached bounds the per-collector cache: collector tokens are bounded by
// the NATS permissions that allow them, but a cache must not trust that.
const maxCached = 4096

// A Voucher checks events against the collectors' bindings. It is safe for
// concurrent use.
type Voucher struct {
	rules    []rule
	reject   bool
	unlisted bool // mark what unlisted collectors claim

	cache  sync.Map // collector token → place; read-mostly, lock-free reads
	cached atomic.Int64
}

// place is where a collector runs, as far as its identity says.
type place struct {
	listed             bool
	node, ns           string
	bindsNode, bindsNS bool
}

// New compiles cfg. A Voucher with no bindings and unlisted trust checks
// nothing and costs one branch per event.
func New(cfg Config) (*Voucher, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("vouch config: %w", err)
	}
	v := &Voucher{reject: cfg.OnSpoof == Reject, unlisted: cfg.Unlisted == MarkUnlisted}
	for _, b := range cfg.Collectors {
		r, err := b.compile()
		if err != nil {
			return nil, err // Validate compiled it already
		}
		v.rules = append(v.rules, r)
	}
	return v, nil
}

// Rejects reports whether spoofed events are to be rejected rather than
// marked.
func (v *Voucher) Rejects() bool { return v != nil && v.reject }

// Check appends to ev's crowsnest.spoofed_fields every field collector's
// identity cannot vouch for and returns how many it appended.
func (v *Voucher) Check(collector string, ev *schemas.Event) int {
	if v == nil || (len(v.rules) == 0 && !v.unlisted) {
		return 0
	}
	p := v.place(collector)
	if !p.listed && !v.unlisted {
		return 0
	}
	before := len(ev.Crowsnest.SpoofedFields)
	mark := func(field, claim, vouched string, binds bool) {
		if claim == "" {
			return
		}
		if !p.listed || (binds && !sameToken(claim, vouched)) {
			ev.Crowsnest.SpoofedFields = append(ev.Crowsnest.SpoofedFields, field)
		}
	}
	mark(FieldHostName, ev.Host.Name, p.node, p.bindsNode)
	mark(FieldHostHostname, ev.Host.Hostname, p.node, p.bindsNode)
	mark(FieldCollectorNode, ev.Crowsnest.Collector.Node, p.node, p.bindsNode)
	mark(FieldNamespace, ev.Orchestrator.Namespace, p.ns, p.bindsNS)
	return len(ev.Crowsnest.SpoofedFields) - before
}

func (v *Voucher) place(collector string) place {
	if p, ok := v.cache.Load(collector); ok {
		return p.(place)
	}
	p := v.resolve(collector)
	if v.cached.Load() < maxCached {
		if _, loaded := v.cache.LoadOrStore(collector, p); !loaded {
			v.cached.Add(1)
		}
	}
	return p
}

func (v *Voucher) resolve(collector string) place {
	for _, r := range v.rules {
		var m []string
		if r.re == nil {
			if collector != r.literal {
				continue
			}
		} else if m = r.re.FindStringSubmatch(collector); m == nil {
			continue
		}
		p := place{listed: true, node: r.node, ns: r.ns, bindsNode: r.bindsNode, bindsNS: r.bNS}
		if r.nodeAt > 0 {
			p.node = sanitize(m[r.nodeAt])
		}
		if r.nsAt > 0 {
			p.ns = sanitize(m[r.nsAt])
		}
		return p
	}
	return place{}
}

// sameToken reports whether claim, as a subject token, is token, without
// building the token on the hot path.
func sameToken(claim, token string) bool {
	if len(claim) > topology.MaxTokenLen {
		return sanitize(claim) == token
	}
	if len(claim) != len(token) {
		return false
	}
	for i := 0; i < len(claim); i++ {
		c := claim[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '_':
		case c >= 'A' && c <= 'Z':
			c += 'a' - 'A'
		default:
			c = '_'
		}
		if c != token[i] {
			return false
		}
	}
	return true
}
