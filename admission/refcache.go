package admission

import (
	"sync"

	"github.com/google/go-containerregistry/pkg/name"
)

// refCacheSize bounds how many parsed image references are kept; a pod's
// images repeat, so a few thousand cover a cluster's.
const refCacheSize = 4096

// refCache keeps image references parsed once: parsing a reference is
// most of what a cached decision costs otherwise. A name.Reference is an
// immutable value, so one parse serves every review that names it. When
// full the cache starts again empty, which bounds it without bookkeeping
// on the hot path.
type refCache struct {
	mu   sync.RWMutex
	refs map[string]name.Reference
}

func (c *refCache) parse(image string) (name.Reference, error) {
	c.mu.RLock()
	ref, ok := c.refs[image]
	c.mu.RUnlock()
	if ok {
		return ref, nil
	}
	ref, err := name.ParseReference(image)
	if err != nil {
		// Invalid references are not kept: they cost a parse each, and
		// cannot crowd out valid ones.
		return nil, err
	}
	c.mu.Lock()
	if c.refs == nil || len(c.refs) >= refCacheSize {
		c.refs = make(map[string]name.Reference, 64)
	}
	c.refs[image] = ref
	c.mu.Unlock()
	return ref, nil
}
