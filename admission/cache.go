package admission

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/sync/singleflight"
)

// cacheOutcome says how a cache lookup was answered.
type cacheOutcome int

const (
	cacheHit    cacheOutcome = iota // a stored result
	cacheMiss                       // this caller started the computation
	cacheShared                     // this caller joined a computation in flight
)

func (o cacheOutcome) String() string {
	return [...]string{"hit", "miss", "shared"}[o]
}

// decisionCache is a bounded LRU of decisions with expiry (golang-lru), in
// front of a single flight per key (x/sync singleflight): concurrent misses
// for one key run the computation once and all get its result.
//
// golang-lru's expirable cache is not used: it has one TTL and reads the
// wall clock, while a refusal expires sooner than an admission and the
// webhook's clock decides expiry (tests move it). So each entry carries its
// own expiry, checked on lookup, and the plain LRU bounds their number.
//
// The computation runs detached from the caller's cancellation, bounded by
// flightTimeout: a caller whose deadline passes gets its context's error, and
// the computation finishes for the callers after it. A result is stored only
// if no purge happened while it was computed, and a caller after a purge
// never joins a computation begun before it.
type decisionCache struct {
	ttl, negativeTTL time.Duration
	flightTimeout    time.Duration
	// cacheable says whether an error may be stored, for negativeTTL.
	cacheable func(error) bool
	now       func() time.Time

	entries *lru.Cache[string, cacheEntry] // nil: nothing is stored
	flights singleflight.Group

	mu  sync.Mutex    // orders stores after the purges they race with
	gen atomic.Uint64 // incremented by purge

	// joined, when set (tests), is called once a caller has started or
	// joined the computation in flight for key.
	joined func(key string)
}

type cacheEntry struct {
	err     error // nil: admitted
	expires time.Time
}

func newDecisionCache(size int, ttl, negativeTTL, flightTimeout time.Duration, cacheable func(error) bool) *decisionCache {
	c := &decisionCache{
		ttl: ttl, negativeTTL: negativeTTL, flightTimeout: flightTimeout,
		cacheable: cacheable, now: time.Now,
	}
	if size > 0 {
		// lru.New fails only for a size below one.
		c.entries, _ = lru.New[string, cacheEntry](size)
	}
	return c
}

// lookup returns the stored decision for key, or the result of fn, computed
// once for all concurrent callers.
func (c *decisionCache) lookup(ctx context.Context, key string, fn func(context.Context) error) (cacheOutcome, error) {
	if ok, err := c.get(key); ok {
		return cacheHit, err
	}
	gen := c.gen.Load()
	var started atomic.Bool
	// The generation is part of the flight's key, so that a purge (a policy
	// changed) is never answered by a computation under the old one.
	ch := c.flights.DoChan(strconv.FormatUint(gen, 10)+"/"+key, func() (any, error) {
		started.Store(true)
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.flightTimeout)
		defer cancel()
		err := runGuarded(fctx, fn)
		c.put(gen, key, err)
		return nil, err
	})
	if c.joined != nil {
		c.joined(key)
	}
	select {
	case r := <-ch:
		if started.Load() {
			return cacheMiss, r.Err
		}
		return cacheShared, r.Err
	case <-ctx.Done():
		if started.Load() {
			return cacheMiss, ctx.Err()
		}
		return cacheShared, ctx.Err()
	}
}

// runGuarded runs fn, turning a panic into an error: a computation runs on
// its own goroutine, where a panic would end the process.
func runGuarded(ctx context.Context, fn func(context.Context) error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("verification panicked: %v", r)
		}
	}()
	return fn(ctx)
}

// get returns the unexpired decision stored for key.
func (c *decisionCache) get(key string) (bool, error) {
	if c.entries == nil {
		return false, nil
	}
	e, ok := c.entries.Get(key)
	if !ok {
		return false, nil
	}
	if !c.now().Before(e.expires) {
		c.entries.Remove(key)
		return false, nil
	}
	return true, e.err
}

// put stores the decision computed for key, unless a purge happened since
// generation gen began or the decision is not to be kept.
func (c *decisionCache) put(gen uint64, key string, err error) {
	ttl := c.ttl
	if err != nil {
		if !c.cacheable(err) {
			return
		}
		ttl = c.negativeTTL
	}
	if ttl <= 0 || c.entries == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen == c.gen.Load() {
		c.entries.Add(key, cacheEntry{err: err, expires: c.now().Add(ttl)})
	}
}

// purge forgets every stored decision; those being computed are not
// stored.
func (c *decisionCache) purge() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen.Add(1)
	if c.entries != nil {
		c.entries.Purge()
	}
}

// len is the number of stored decisions.
func (c *decisionCache) len() int {
	if c.entries == nil {
		return 0
	}
	return c.entries.Len()
}
