package admission

import (
	"container/list"
	"context"
	"fmt"
	"sync"
	"time"
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

// decisionCache is a bounded LRU of decisions with expiry, in front of a
// single flight per key: concurrent misses for one key run the computation
// once and all get its result.
//
// The computation runs detached from the caller's cancellation, bounded by
// flightTimeout: a caller whose deadline passes gets its context's error, and
// the computation finishes for the callers after it. A result is stored only
// if no purge happened while it was computed.
type decisionCache struct {
	ttl, negativeTTL time.Duration
	size             int
	flightTimeout    time.Duration
	// cacheable says whether an error may be stored, for negativeTTL.
	cacheable func(error) bool
	now       func() time.Time

	mu      sync.Mutex
	ll      *list.List // of *cacheEntry, most recently used first
	items   map[string]*list.Element
	flights map[string]*flight
	gen     uint64 // incremented by purge

	// joined, when set (tests), is called when a caller joins a computation
	// in flight.
	joined func(key string)
}

type cacheEntry struct {
	key     string
	err     error // nil: admitted
	expires time.Time
}

// flight is a computation in progress; done is closed when err is set.
type flight struct {
	done chan struct{}
	err  error
}

func newDecisionCache(size int, ttl, negativeTTL, flightTimeout time.Duration, cacheable func(error) bool) *decisionCache {
	return &decisionCache{
		ttl: ttl, negativeTTL: negativeTTL, size: size, flightTimeout: flightTimeout,
		cacheable: cacheable, now: time.Now,
		ll: list.New(), items: map[string]*list.Element{}, flights: map[string]*flight{},
	}
}

// lookup returns the stored decision for key, or the result of fn, computed
// once for all concurrent callers.
func (c *decisionCache) lookup(ctx context.Context, key string, fn func(context.Context) error) (cacheOutcome, error) {
	c.mu.Lock()
	if ok, err := c.getLocked(key); ok {
		c.mu.Unlock()
		return cacheHit, err
	}
	if f, ok := c.flights[key]; ok {
		joined := c.joined
		c.mu.Unlock()
		if joined != nil {
			joined(key)
		}
		return cacheShared, c.wait(ctx, f)
	}
	f := &flight{done: make(chan struct{})}
	c.flights[key] = f
	gen := c.gen
	c.mu.Unlock()

	go func() {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.flightTimeout)
		defer cancel()
		err := runGuarded(fctx, fn)
		c.mu.Lock()
		if gen == c.gen {
			c.putLocked(key, err)
		}
		if c.flights[key] == f {
			delete(c.flights, key)
		}
		f.err = err
		c.mu.Unlock()
		close(f.done)
	}()
	return cacheMiss, c.wait(ctx, f)
}

func (c *decisionCache) wait(ctx context.Context, f *flight) error {
	select {
	case <-f.done:
		return f.err
	case <-ctx.Done():
		return ctx.Err()
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

func (c *decisionCache) getLocked(key string) (bool, error) {
	el, ok := c.items[key]
	if !ok {
		return false, nil
	}
	e := el.Value.(*cacheEntry)
	if !c.now().Before(e.expires) {
		c.ll.Remove(el)
		delete(c.items, key)
		return false, nil
	}
	c.ll.MoveToFront(el)
	return true, e.err
}

func (c *decisionCache) putLocked(key string, err error) {
	ttl := c.ttl
	if err != nil {
		if !c.cacheable(err) {
			return
		}
		ttl = c.negativeTTL
	}
	if ttl <= 0 || c.size <= 0 {
		return
	}
	e := &cacheEntry{key: key, err: err, expires: c.now().Add(ttl)}
	if el, ok := c.items[key]; ok {
		el.Value = e
		c.ll.MoveToFront(el)
		return
	}
	c.items[key] = c.ll.PushFront(e)
	for c.ll.Len() > c.size {
		old := c.ll.Back()
		c.ll.Remove(old)
		delete(c.items, old.Value.(*cacheEntry).key)
	}
}

// purge forgets every stored decision; those being computed are not
// stored.
func (c *decisionCache) purge() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.ll.Init()
	c.items = map[string]*list.Element{}
}

// len is the number of stored decisions.
func (c *decisionCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ll.Len()
}
