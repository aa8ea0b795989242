package admission

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twinforge/twinforge/attest/verify"
)

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

var errRefusedEvidence = &verify.VerificationError{Check: verify.CheckSignature, Err: verify.ErrNotSigned}

// TestDecisionCache covers the cache alone: expiry of positive and negative
// results, what is never stored, the LRU bound and order, and purges.
func TestDecisionCache(t *testing.T) {
	ctx := context.Background()
	newCache := func(size int) (*decisionCache, *fakeClock, *atomic.Int32) {
		c := newDecisionCache(size, time.Minute, 10*time.Second, time.Second, cacheableRefusal)
		clk := newFakeClock()
		c.now = clk.Now
		return c, clk, &atomic.Int32{}
	}
	compute := func(calls *atomic.Int32, err error) func(context.Context) error {
		return func(context.Context) error { calls.Add(1); return err }
	}

	t.Run("ttl", func(t *testing.T) {
		c, clk, calls := newCache(8)
		for i, want := range []cacheOutcome{cacheMiss, cacheHit, cacheHit} {
			if got, err := c.lookup(ctx, "k", compute(calls, nil)); got != want || err != nil {
				t.Fatalf("lookup %d: %v %v, want %v", i, got, err, want)
			}
			clk.Advance(59 * time.Second / 2)
		}
		clk.Advance(time.Second) // 60s after the store
		if got, _ := c.lookup(ctx, "k", compute(calls, nil)); got != cacheMiss || calls.Load() != 2 {
			t.Fatalf("after the TTL: %v, %d computations", got, calls.Load())
		}
	})

	t.Run("negative ttl", func(t *testing.T) {
		c, clk, calls := newCache(8)
		if _, err := c.lookup(ctx, "k", compute(calls, errRefusedEvidence)); !errors.Is(err, verify.ErrNotSigned) {
			t.Fatalf("err = %v", err)
		}
		clk.Advance(9 * time.Second)
		if got, err := c.lookup(ctx, "k", compute(calls, nil)); got != cacheHit || !errors.Is(err, verify.ErrNotSigned) {
			t.Fatalf("within the negative TTL: %v %v", got, err)
		}
		clk.Advance(time.Second)
		if got, err := c.lookup(ctx, "k", compute(calls, nil)); got != cacheMiss || err != nil {
			t.Fatalf("after the negative TTL: %v %v", got, err)
		}
	})

	t.Run("transient errors are not stored", func(t *testing.T) {
		c, _, calls := newCache(8)
		for _, err := range []error{context.DeadlineExceeded, errors.New("connection refused"), fmt.Errorf("%w: plain HTTP", ErrInsecure)} {
			c.lookup(ctx, "k", compute(calls, err))
			if c.len() != 0 {
				t.Fatalf("%v was cached", err)
			}
		}
	})

	t.Run("lru bound", func(t *testing.T) {
		c, _, calls := newCache(2)
		c.lookup(ctx, "a", compute(calls, nil))
		c.lookup(ctx, "b", compute(calls, nil))
		c.lookup(ctx, "a", compute(calls, nil)) // a is now the most recent
		c.lookup(ctx, "c", compute(calls, nil)) // evicts b
		if c.len() != 2 {
			t.Fatalf("len = %d, want 2", c.len())
		}
		for key, want := range map[string]cacheOutcome{"a": cacheHit, "c": cacheHit} {
			if got, _ := c.lookup(ctx, key, compute(calls, nil)); got != want {
				t.Errorf("%s: %v, want %v", key, got, want)
			}
		}
		if got, _ := c.lookup(ctx, "b", compute(calls, nil)); got != cacheMiss {
			t.Errorf("b: %v, want miss (evicted)", got)
		}
	})

	t.Run("purge", func(t *testing.T) {
		c, _, calls := newCache(8)
		c.lookup(ctx, "k", compute(calls, nil))
		c.purge()
		if got, _ := c.lookup(ctx, "k", compute(calls, nil)); got != cacheMiss {
			t.Fatalf("after purge: %v", got)
		}
	})

	t.Run("purge during a computation", func(t *testing.T) {
		c, _, _ := newCache(8)
		release, inFlight := make(chan struct{}), make(chan struct{})
		done := make(chan error)
		go func() {
			_, err := c.lookup(ctx, "k", func(context.Context) error { close(inFlight); <-release; return nil })
			done <- err
		}()
		<-inFlight
		c.purge()
		close(release)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if c.len() != 0 {
			t.Fatal("a result computed before the purge was stored after it")
		}
	})

	t.Run("no joining across a purge", func(t *testing.T) {
		// A lookup after a purge (a policy changed) computes anew rather
		// than take the answer of a computation under the old policy.
		c, _, _ := newCache(8)
		release, inFlight := make(chan struct{}), make(chan struct{})
		old := make(chan error)
		go func() {
			_, err := c.lookup(ctx, "k", func(context.Context) error { close(inFlight); <-release; return errRefusedEvidence })
			old <- err
		}()
		<-inFlight
		c.purge()
		got, err := c.lookup(ctx, "k", func(context.Context) error { return nil })
		if got != cacheMiss || err != nil {
			t.Fatalf("lookup after the purge: %v %v, want a miss of its own that admits", got, err)
		}
		close(release)
		if err := <-old; !errors.Is(err, verify.ErrNotSigned) {
			t.Fatalf("the computation before the purge: %v", err)
		}
		if got, err := c.lookup(ctx, "k", func(context.Context) error { return errors.New("unused") }); got != cacheHit || err != nil {
			t.Fatalf("stored: %v %v, want the decision made after the purge", got, err)
		}
	})

	t.Run("caller deadline", func(t *testing.T) {
		// A caller that gives up gets its context's error; the computation
		// goes on and is stored for the next caller.
		c, _, calls := newCache(8)
		release := make(chan struct{})
		finished := make(chan struct{})
		cctx, cancel := context.WithCancel(ctx)
		started := make(chan struct{})
		go func() { <-started; cancel() }()
		_, err := c.lookup(cctx, "k", func(fctx context.Context) error {
			close(started)
			<-release
			defer close(finished)
			calls.Add(1)
			return fctx.Err()
		})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want the caller's cancellation", err)
		}
		close(release)
		<-finished
		for c.len() == 0 { // the store follows the computation's return
			time.Sleep(time.Millisecond)
		}
		if got, err := c.lookup(ctx, "k", compute(calls, errors.New("unused"))); got != cacheHit || err != nil {
			t.Fatalf("next caller: %v %v", got, err)
		}
	})

	t.Run("panic", func(t *testing.T) {
		c, _, _ := newCache(8)
		_, err := c.lookup(ctx, "k", func(context.Context) error { panic("boom") })
		if err == nil || !strings.Contains(err.Error(), "panicked") {
			t.Fatalf("err = %v", err)
		}
	})
}

// TestSingleFlight: concurrent reviews of one uncached image verify it once.
func TestSingleFlight(t *testing.T) {
	const n = 8
	reg := newMemRegistry(t)
	key := newTestKey(t)
	good := signedImage(t, reg.host, "team/app", "v1", key.signer(t))
	wh := newTestWebhook(t, Source{PolicyFile: keyPolicy(t, t.TempDir(), key)})

	// Hold the one verification at the registry until every review has
	// started or joined it.
	var joined atomic.Int32
	allJoined := make(chan struct{})
	wh.cache.joined = func(string) {
		if joined.Add(1) == n {
			close(allJoined)
		}
	}
	reg.setGate(func(r *http.Request) {
		if strings.Contains(r.URL.Path, "/referrers/") {
			<-allJoined
		}
	})
	before := reg.count("/referrers/")
	var wg sync.WaitGroup
	denied := make(chan string, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if resp := decide(t, wh, "default", good.pinned); !resp.Allowed {
				denied <- message(resp)
			}
		}()
	}
	wg.Wait()
	close(denied)
	for msg := range denied {
		t.Errorf("denied: %s", msg)
	}
	if got := reg.count("/referrers/") - before; got != 1 {
		t.Errorf("referrers fetched %d times for %d concurrent reviews, want 1", got, n)
	}
	if miss, shared := counterValue(t, wh, "twinforge_admission_cache_lookups_total", `outcome="miss"`), counterValue(t, wh, "twinforge_admission_cache_lookups_total", `outcome="shared"`); miss != 1 || shared != n-1 {
		t.Errorf("cache lookups: %v miss, %v shared; want 1 and %d", miss, shared, n-1)
	}
}

// TestWebhookCache: a cached decision needs no registry request (but the tag
// is resolved again), expires after its TTL, and a bounded cache forgets the
// least recently used image.
func TestWebhookCache(t *testing.T) {
	reg := newMemRegistry(t)
	key := newTestKey(t)
	s := key.signer(t)
	imgs := []pushed{signedImage(t, reg.host, "team/a", "v1", s), signedImage(t, reg.host, "team/b", "v1", s), signedImage(t, reg.host, "team/c", "v1", s)}
	wh := newTestWebhook(t, Source{PolicyFile: keyPolicy(t, t.TempDir(), key)}, WithCacheSize(2), WithCacheTTL(time.Minute))
	clk := newFakeClock()
	wh.cache.now = clk.Now

	admit := func(image string) {
		t.Helper()
		if resp := decide(t, wh, "default", image); !resp.Allowed {
			t.Fatalf("denied: %s", message(resp))
		}
	}
	requests := func(f func()) int {
		before := reg.total()
		f()
		return reg.total() - before
	}
	if n := requests(func() { admit(imgs[0].pinned) }); n == 0 {
		t.Fatal("the first decision made no registry request")
	}
	if n := requests(func() { admit(imgs[0].pinned) }); n != 0 {
		t.Fatalf("a cached decision by digest made %d registry requests", n)
	}
	if n := requests(func() { admit(imgs[0].tag) }); n != 1 || reg.count("HEAD /v2/team/a/manifests/v1") == 0 {
		t.Fatalf("a cached decision by tag made %d registry requests, want 1 (HEAD of the tag)", n)
	}

	clk.Advance(time.Minute)
	if n := requests(func() { admit(imgs[0].pinned) }); n == 0 {
		t.Fatal("an expired decision was not verified again")
	}

	admit(imgs[1].pinned)
	admit(imgs[2].pinned) // evicts imgs[0], the least recently used
	if n := requests(func() { admit(imgs[2].pinned) }); n != 0 {
		t.Fatal("the most recent decision was evicted")
	}
	if n := requests(func() { admit(imgs[0].pinned) }); n == 0 {
		t.Fatal("the cache holds more than its size")
	}
}

// TestNegativeCache: a refusal is remembered for the negative TTL only, so
// an image signed after its first refusal is admitted once it passes.
func TestNegativeCache(t *testing.T) {
	reg := newMemRegistry(t)
	key := newTestKey(t)
	img, d, m := randomImage(t)
	unsigned := push(t, reg.host, "team/app", "v1", img, nil)
	wh := newTestWebhook(t, Source{PolicyFile: keyPolicy(t, t.TempDir(), key)}, WithNegativeCacheTTL(10*time.Second))
	clk := newFakeClock()
	wh.cache.now = clk.Now

	if resp := decide(t, wh, "default", unsigned.pinned); resp.Allowed {
		t.Fatal("unsigned image admitted")
	}
	// Signed now: the same image with its evidence.
	push(t, reg.host, "team/app", "v1", img, evidenceFor(t, key.signer(t), unsigned.repo, d, m, true))
	before := reg.total()
	if resp := decide(t, wh, "default", unsigned.pinned); resp.Allowed || reg.total() != before {
		t.Fatalf("within the negative TTL: allowed %v, %d registry requests", resp.Allowed, reg.total()-before)
	}
	clk.Advance(10 * time.Second)
	if resp := decide(t, wh, "default", unsigned.pinned); !resp.Allowed {
		t.Fatalf("after the negative TTL: %s", message(resp))
	}
}

// TestInvalidation: changing the policy or the trusted root empties the
// cache; a change that does not parse keeps the last good configuration;
// editing only the revocation list keeps the cache.
func TestInvalidation(t *testing.T) {
	reg := newMemRegistry(t)
	key := newTestKey(t)
	good := signedImage(t, reg.host, "team/app", "v1", key.signer(t))
	dir := t.TempDir()
	policy := keyPolicy(t, dir, key)
	trustedRoot := filepath.Join(dir, "trusted_root.json")
	writeTestFile(t, trustedRoot, string(testTrustedRoot(t)))
	revocations := filepath.Join(dir, "revoked.txt")
	writeTestFile(t, revocations, "")
	wh := newTestWebhook(t, Source{PolicyFile: policy, TrustedRootFile: trustedRoot, RevocationsFile: revocations})

	verifications := func() float64 {
		return counterValue(t, wh, "twinforge_admission_cache_lookups_total", `outcome="miss"`)
	}
	admit := func(step string) {
		t.Helper()
		if resp := decide(t, wh, "default", good.pinned); !resp.Allowed {
			t.Fatalf("%s: denied: %s", step, message(resp))
		}
	}
	admit("first")
	admit("cached")
	if v := verifications(); v != 1 {
		t.Fatalf("verifications = %v, want 1", v)
	}

	data, _ := os.ReadFile(policy)
	writeTestFile(t, policy, string(data)+"maxAge: 30d\n")
	if err := wh.Reload(); err != nil {
		t.Fatal(err)
	}
	admit("after a policy change")
	if v := verifications(); v != 2 {
		t.Fatalf("verifications = %v after a policy change, want 2", v)
	}

	writeTestFile(t, trustedRoot, string(testTrustedRoot(t)))
	if err := wh.Reload(); err != nil {
		t.Fatal(err)
	}
	admit("after a trusted root change")
	if v := verifications(); v != 3 {
		t.Fatalf("verifications = %v after a trusted root change, want 3", v)
	}

	writeTestFile(t, revocations, "sha256:"+strings.Repeat("e", 64)+"\n")
	if err := wh.Reload(); err != nil {
		t.Fatal(err)
	}
	admit("after a revocation list change")
	if v := verifications(); v != 3 {
		t.Fatalf("verifications = %v after a revocation list change, want 3 (cache kept)", v)
	}

	writeTestFile(t, policy, "apiVersion: twinforge.dev/v2\nkind: Policy\nidentities: []\nbogus: 1\n")
	if err := wh.Reload(); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("reload of a broken policy: %v, want ErrInvalidConfig", err)
	}
	admit("with a broken policy file (the last good one stays)")
	if got := counterValue(t, wh, "twinforge_admission_reloads_total", `result="error"`); got != 1 {
		t.Fatalf("reload errors = %v, want 1", got)
	}
}

// TestRevocationHotReload: a digest added to the revocation list is denied
// at once, though its admission is cached, through polling alone.
func TestRevocationHotReload(t *testing.T) {
	reg := newMemRegistry(t)
	key := newTestKey(t)
	good := signedImage(t, reg.host, "team/app", "v1", key.signer(t))
	dir := t.TempDir()
	revocations := filepath.Join(dir, "revoked.txt")
	writeTestFile(t, revocations, "# nothing revoked yet\n")
	wh := newTestWebhook(t, Source{PolicyFile: keyPolicy(t, dir, key), RevocationsFile: revocations}, WithPollInterval(5*time.Millisecond))
	if resp := decide(t, wh, "default", good.tag); !resp.Allowed {
		t.Fatalf("denied: %s", message(resp))
	}
	writeTestFile(t, revocations, good.digest+"\n")
	for wh.snap.Load().revoked.has(good.digest) == false {
		time.Sleep(5 * time.Millisecond) // until the poller reloads; the test timeout bounds it
	}
	before := reg.count("/referrers/")
	resp := decide(t, wh, "default", good.tag)
	if resp.Allowed || !strings.Contains(message(resp), "revoked") || !strings.Contains(message(resp), good.digest) {
		t.Fatalf("allowed %v: %s", resp.Allowed, message(resp))
	}
	if reg.count("/referrers/") != before {
		t.Fatal("a revoked digest was verified")
	}
	if got := counterValue(t, wh, "twinforge_admission_revoked_digests", ""); got != 1 {
		t.Fatalf("revoked_digests = %v", got)
	}
	// A broken list keeps the last good one.
	writeTestFile(t, revocations, "not a digest\n")
	for counterValue(t, wh, "twinforge_admission_reloads_total", `result="error"`) == 0 {
		time.Sleep(5 * time.Millisecond)
	}
	if resp := decide(t, wh, "default", good.tag); resp.Allowed {
		t.Fatal("a broken revocation list emptied it")
	}
}

// A parsed reference is kept and given again; an invalid one is refused
// each time and never kept; a full cache starts again.
func TestRefCache(t *testing.T) {
	var c refCache
	a, err := c.parse("registry.example/team/app:1")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := c.parse("registry.example/team/app:1")
	if a != b || a.String() != "registry.example/team/app:1" {
		t.Errorf("second parse %v, want the kept %v", b, a)
	}
	for range 2 {
		if _, err := c.parse("Registry.example/UPPER:x y"); err == nil {
			t.Error("invalid reference parsed")
		}
	}
	if len(c.refs) != 1 {
		t.Errorf("%d references kept, want the valid one", len(c.refs))
	}
	for i := range refCacheSize + 1 {
		if _, err := c.parse(fmt.Sprintf("registry.example/team/app:%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if len(c.refs) > refCacheSize {
		t.Errorf("%d references kept, want at most %d", len(c.refs), refCacheSize)
	}
}
