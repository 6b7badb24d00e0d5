package normalize

import (
	"sync"
	"sync/atomic"

	"github.com/crowsnest-siem/crowsnest/schemas"
)

// imageCache remembers parsed image references. A cluster runs few distinct
// images and every Tetragon event and Falco alert names one, while
// distribution/reference parses with regular expressions (~2 µs); the cache
// turns that into a lock-free lookup. It is bounded in entries and key
// length, since image names in audit records are attacker-chosen: when full,
// references are parsed without being stored. One per Normalizer.
type imageCache struct {
	m sync.Map // string → imageEntry
	n atomic.Int64
}

type imageEntry struct {
	ref ImageRef
	ok  bool
}

const (
	imageCacheEntries = 4096
	imageCacheKeyLen  = 256
)

func (c *imageCache) parse(s string) (ImageRef, bool) {
	if v, hit := c.m.Load(s); hit {
		e := v.(imageEntry)
		return e.ref, e.ok
	}
	ref, err := ParseImage(s)
	e := imageEntry{ref: ref, ok: err == nil}
	if len(s) <= imageCacheKeyLen && c.n.Load() < imageCacheEntries {
		if _, loaded := c.m.LoadOrStore(s, e); !loaded {
			c.n.Add(1)
		}
	}
	return e.ref, e.ok
}

// fill is FillImage through the cache.
func (c *imageCache) fill(img *schemas.ContainerImage) {
	if img.Name == "" || img.Registry != "" {
		return
	}
	ref, ok := c.parse(img.Name)
	if !ok {
		return
	}
	img.Registry, img.Repository = ref.Registry, ref.Repository
	if ref.Tag != "" && len(img.Tag) == 0 {
		img.Tag = append(img.Tag[:0], ref.Tag)
	}
	if ref.Digest != "" && len(img.Hash.All) == 0 {
		img.Hash.All = append(img.Hash.All[:0], ref.Digest)
	}
}
