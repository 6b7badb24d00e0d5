package enrich

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/crowsnest-siem/crowsnest/processor/normalize"
	"github.com/crowsnest-siem/crowsnest/schemas"
)

// trust ranks what a source can vouch for about a container. The API
// server knows which pod a container belongs to; a node agent (Falco,
// Tetragon, the Docker engine) reports what its runtime says; procwatch
// and user JSON say nothing the cache may believe. A lower rank never
// overwrites what a higher one taught; it only fills gaps.
type trust int8

const (
	trustNone trust = iota
	trustRuntime
	trustAPIServer
)

func trustOf(source string) trust {
	switch source {
	case "k8s_audit":
		return trustAPIServer
	case "falco", "tetragon", "docker":
		return trustRuntime
	}
	return trustNone
}

// container is what the cache knows about one container.
type container struct {
	name, runtime        string
	namespace, pod, node string
	image                image
	rank                 trust
}

type image struct {
	name, tag, digest, registry, repository string
}

// pod is what the cache knows about one pod: its node and the image of each
// container by name, from its spec.
type pod struct {
	node       string
	containers [maxPodContainers]podContainer
	n          int
	rank       trust
}

type podContainer struct{ name, image string }

// maxPodContainers bounds the containers kept per pod (a pod spec's
// containers, init and ephemeral ones together); beyond it, the rest are
// not remembered.
const maxPodContainers = 16

// shortID is the length of the short container id Docker and Falco print.
const shortID = 12

// Enricher joins runtime events to the pods and images their containers
// belong to. Every event teaches it what it says about its container (a
// Kubernetes audit pod object, a Docker event with pod labels, a Tetragon
// event with its pod, a Falco alert with its k8s fields), and an event with
// a container id that lacks orchestrator.* or container.image.* gains them
// from what earlier events taught. Safe for concurrent use: the pipeline
// consumes every source in its own goroutine.
type Enricher struct {
	now     func() time.Time
	trusted normalize.TrustedRegistries

	mu         sync.Mutex
	containers *lru[container]
	pods       *lru[pod]

	stats Stats
}

// Stats counts what the Enricher did (the metrics read them).
type Stats struct {
	Hits, Misses    atomic.Int64 // lookups of an event that lacked fields
	Enriched        atomic.Int64 // events that gained at least one field
	EvictedCapacity atomic.Int64
	EvictedExpired  atomic.Int64
	Learned         atomic.Int64 // entries written (new or refreshed)
}

// An Option changes what New builds.
type Option func(*Enricher)

// WithClock sets the clock of entry ages (default time.Now), for tests.
func WithClock(now func() time.Time) Option { return func(e *Enricher) { e.now = now } }

// WithTrustedRegistries sets crowsnest.image.trusted on events whose image
// the Enricher fills, as the Normalizer does for images the record names.
func WithTrustedRegistries(t normalize.TrustedRegistries) Option {
	return func(e *Enricher) { e.trusted = t }
}

// New returns an Enricher bounded by cfg.
func New(cfg Config, opts ...Option) (*Enricher, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("enrich config: %w", err)
	}
	e := &Enricher{now: time.Now}
	onEvict := func(r evictReason) {
		if r == evictExpired {
			e.stats.EvictedExpired.Add(1)
		} else {
			e.stats.EvictedCapacity.Add(1)
		}
	}
	e.containers = newLRU[container](cfg.MaxEntries, cfg.TTL, onEvict)
	e.pods = newLRU[pod](cfg.MaxEntries, cfg.TTL, onEvict)
	for _, o := range opts {
		o(e)
	}
	return e, nil
}

// Stats returns the Enricher's counters.
func (e *Enricher) Stats() *Stats { return &e.stats }

// Len returns how many container and pod entries the caches hold.
func (e *Enricher) Len() (containers, pods int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.containers.len(), e.pods.len()
}

// Enrich learns what ev says about its container or pod, then fills what ev
// lacks from what the cache knows. It never overwrites a field the event
// has.
func (e *Enricher) Enrich(ev *schemas.Event) {
	rank := trustOf(ev.Crowsnest.Source)
	// An event with fields its collector's identity cannot vouch for (the
	// normalizer marked them) may be filled, but it teaches nothing: one
	// lying collector would otherwise rename other nodes' containers and
	// pods for every later event.
	teaches := len(ev.Crowsnest.SpoofedFields) == 0
	if rank == trustAPIServer {
		if teaches && ev.Kubernetes.Audit.ObjectRef.Resource == "pods" {
			e.learnPod(ev)
		}
		return // an audit event is about the API, not a container
	}
	id := ev.Container.ID
	if id == "" {
		return
	}
	now := e.now().UnixNano()
	e.mu.Lock()
	defer e.mu.Unlock()
	if teaches && rank > trustNone {
		e.learnContainer(ev, id, rank, now)
	}
	if !lacks(ev) {
		return
	}
	c, ok := e.lookup(id, now)
	if ok {
		e.stats.Hits.Add(1)
	} else {
		e.stats.Misses.Add(1)
	}
	if e.fill(ev, c, now) {
		e.stats.Enriched.Add(1)
	}
}

// lacks reports whether ev misses something the cache could give.
func lacks(ev *schemas.Event) bool {
	o := &ev.Orchestrator
	return o.Namespace == "" || o.Resource.Name == "" || ev.Container.Image.Name == "" || ev.Host.Name == ""
}

// lookup finds a container by its id, or by the 12-character short id
// every longer form (Docker's full id, Tetragon's 31 characters) starts
// with.
func (e *Enricher) lookup(id string, now int64) (*container, bool) {
	if c, ok := e.containers.get(id, now); ok {
		return c, true
	}
	if len(id) > shortID {
		return e.containers.get(id[:shortID], now)
	}
	return nil, false
}

// learnContainer records what a runtime event says about its container.
func (e *Enricher) learnContainer(ev *schemas.Event, id string, rank trust, now int64) {
	var c container
	o := &ev.Orchestrator
	if o.Namespace != "" && o.Resource.Name != "" && (o.Resource.Type == "pods" || o.Resource.Type == "") {
		c.namespace, c.pod = o.Namespace, o.Resource.Name
	}
	c.name, c.runtime, c.node = ev.Container.Name, ev.Container.Runtime, ev.Host.Name
	c.image = imageOf(&ev.Container.Image)
	if c.pod == "" && c.image.name == "" {
		return // nothing worth a join
	}
	c.rank = rank
	e.store(id, c, now)
}

// store merges c into the entries of id and of its short form.
func (e *Enricher) store(id string, c container, now int64) {
	if !validID(id) {
		return
	}
	e.merge(id, c, now)
	if len(id) > shortID {
		e.merge(id[:shortID], c, now)
	}
}

func (e *Enricher) merge(key string, c container, now int64) {
	old, ok := e.containers.get(key, now)
	if !ok {
		e.containers.put(key, c.clone(), now)
		e.stats.Learned.Add(1)
		return
	}
	// Learning again refreshes the entry's age even when nothing changed:
	// the container is alive.
	m := *old
	m.mergeFrom(&c)
	e.containers.put(key, m, now)
	e.stats.Learned.Add(1)
}

// mergeFrom takes c's values: all of them when c's source ranks at least
// as high, otherwise only where m has none. Strings that change are copied
// so the cache never pins a record's bytes.
func (m *container) mergeFrom(c *container) {
	over := c.rank >= m.rank
	set := func(dst *string, v string) {
		if v == "" || *dst == v || (*dst != "" && !over) {
			return
		}
		*dst = strings.Clone(v)
	}
	set(&m.name, c.name)
	set(&m.runtime, c.runtime)
	if c.pod != "" && (m.pod == "" || over) {
		set(&m.namespace, c.namespace)
		set(&m.pod, c.pod)
	}
	set(&m.node, c.node)
	if c.image.name != "" && (m.image.name == "" || over) && m.image != c.image {
		m.image = c.image.clone()
	}
	if c.rank > m.rank {
		m.rank = c.rank
	}
}

func (c container) clone() container {
	c.name, c.runtime = strings.Clone(c.name), strings.Clone(c.runtime)
	c.namespace, c.pod, c.node = strings.Clone(c.namespace), strings.Clone(c.pod), strings.Clone(c.node)
	c.image = c.image.clone()
	return c
}

func (i image) clone() image {
	return image{strings.Clone(i.name), strings.Clone(i.tag), strings.Clone(i.digest), strings.Clone(i.registry), strings.Clone(i.repository)}
}

func imageOf(img *schemas.ContainerImage) image {
	i := image{name: img.Name, registry: img.Registry, repository: img.Repository}
	if len(img.Tag) > 0 {
		i.tag = img.Tag[0]
	}
	if len(img.Hash.All) > 0 {
		i.digest = img.Hash.All[0]
	}
	return i
}

// validID accepts what container runtimes use as ids (hex, and the
// alphanumerics some runtimes' test doubles use), so an attacker-chosen
// string cannot become a cache key that collides with a real id's form.
func validID(id string) bool {
	if len(id) < 6 || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// fill gives ev what it lacks from c (when found) and from its pod's spec;
// it reports whether ev gained anything.
func (e *Enricher) fill(ev *schemas.Event, c *container, now int64) bool {
	gained := false
	o := &ev.Orchestrator
	if c != nil {
		if o.Namespace == "" && o.Resource.Name == "" && c.pod != "" {
			o.Type = "kubernetes"
			o.Namespace, o.Resource.Type, o.Resource.Name = c.namespace, "pods", c.pod
			gained = true
		}
		if ev.Container.Name == "" && c.name != "" {
			ev.Container.Name, gained = c.name, true
		}
		if ev.Container.Runtime == "" && c.runtime != "" {
			ev.Container.Runtime, gained = c.runtime, true
		}
		if ev.Host.Name == "" && c.node != "" {
			ev.Host.Name, gained = c.node, true
		}
		if ev.Container.Image.Name == "" && c.image.name != "" {
			e.setImage(ev, c.image)
			gained = true
		}
	}
	// The pod's spec names each container's image: an event that knows its
	// pod and container name but not the image (a Falco alert without the
	// container plugin's image fields) gains it.
	if ev.Container.Image.Name == "" && o.Namespace != "" && o.Resource.Name != "" && ev.Container.Name != "" {
		if p, ok := e.pods.get(podKey(o.Namespace, o.Resource.Name), now); ok {
			for _, pc := range p.containers[:p.n] {
				if pc.name == ev.Container.Name {
					e.setImage(ev, parseImage(pc.image))
					gained = true
					break
				}
			}
			if ev.Host.Name == "" && p.node != "" {
				ev.Host.Name, gained = p.node, true
			}
		}
	}
	return gained
}

func (e *Enricher) setImage(ev *schemas.Event, i image) {
	img := &ev.Container.Image
	img.Name, img.Registry, img.Repository = i.name, i.registry, i.repository
	if i.tag != "" && len(img.Tag) == 0 {
		img.Tag = append(img.Tag[:0], i.tag)
	}
	if i.digest != "" && len(img.Hash.All) == 0 {
		img.Hash.All = append(img.Hash.All[:0], i.digest)
	}
	if len(e.trusted) > 0 && ev.Crowsnest.Image.Trusted == nil {
		t := e.trusted.Trusts(normalize.ImageRef{Registry: i.registry, Repository: i.repository})
		ev.Crowsnest.Image.Trusted = &t
	}
}

// parseImage splits a reference as the Normalizer does; one that does not
// parse keeps only its name.
func parseImage(ref string) image {
	i := image{name: ref}
	if r, err := normalize.ParseImage(ref); err == nil {
		i.registry, i.repository, i.tag, i.digest = r.Registry, r.Repository, r.Tag, r.Digest
	}
	return i
}

func podKey(namespace, name string) string { return namespace + "/" + name }
