package admission

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	admissionv1 "k8s.io/api/admission/v1"

	"github.com/twinforge/twinforge/internal/testenv"
)

// benchWorkers bounds the load generator: at most this many reviews are in
// flight at once, over keep-alive HTTPS connections.
const benchWorkers = 8

// benchCase is one image of the mix and the decision it must get.
type benchCase struct {
	image string
	admit bool
}

// benchFixture is a webhook served over HTTPS on loopback, deciding images
// of an in-process registry: signed (reproduced), unsigned and tampered (the
// evidence of another image), by tag and by digest.
type benchFixture struct {
	url    string
	ca     string
	client *http.Client
	cases  []benchCase
}

func newBenchFixture(b testing.TB, opts ...Option) *benchFixture {
	return newBenchFixtureRelease(b, false, opts...)
}

// newBenchFixtureRelease is newBenchFixture, with a release index listing
// every signed image when withRelease is set.
func newBenchFixtureRelease(b testing.TB, withRelease bool, opts ...Option) *benchFixture {
	b.Helper()
	reg := newMemRegistry(b)
	key := newTestKey(b)
	s := key.signer(b)
	var rf *releaseFixture
	if withRelease {
		rf = newReleaseFixture(b)
		opts = append(opts, WithReleaseIndex(rf.client, time.Hour))
	}
	var cases []benchCase
	for i := range 8 {
		p := signedImage(b, reg.host, "bench/signed", string(rune('a'+i)), s)
		cases = append(cases, benchCase{p.tag, true}, benchCase{p.pinned, true})
		if rf != nil {
			rf.release(b, p, nil)
		}
	}
	for i := range 4 {
		img, _, _ := randomImage(b)
		p := push(b, reg.host, "bench/unsigned", string(rune('a'+i)), img, nil)
		cases = append(cases, benchCase{p.pinned, false})
		_, od, om := randomImage(b)
		img, _, _ = randomImage(b)
		p = push(b, reg.host, "bench/tampered", string(rune('a'+i)), img, evidenceFor(b, s, p.repo, od, om, true))
		cases = append(cases, benchCase{p.tag, false})
	}
	wh, err := New(Source{PolicyFile: keyPolicy(b, b.TempDir(), key)}, append([]Option{WithPollInterval(0), WithInsecureLoopbackUnsafe()}, opts...)...)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { wh.Close() })
	pki := testenv.NewPKI(b, b.TempDir())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, ln, wh, ServeConfig{CertFile: pki.ServerCert, KeyFile: pki.ServerKey}) }()
	b.Cleanup(func() { cancel(); <-done })
	client := httpsClient(b, pki.CA)
	client.Transport.(*http.Transport).DisableKeepAlives = false
	client.Transport.(*http.Transport).MaxIdleConnsPerHost = benchWorkers
	return &benchFixture{url: "https://" + ln.Addr().String() + PathValidate, ca: pki.CA, client: client, cases: cases}
}

// review sends one pod review and says whether it was admitted.
func (f *benchFixture) review(b testing.TB, body []byte) (bool, error) {
	resp, err := f.client.Post(f.url, "application/json", bytes.NewReader(body))
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return false, err
	}
	var review admissionv1.AdmissionReview
	if err := json.Unmarshal(data, &review); err != nil || review.Response == nil {
		return false, err
	}
	return review.Response.Allowed, nil
}

// run sends n reviews, cycling through the mix, from workers clients,
// and returns each review's latency and how many decisions were wrong.
func (f *benchFixture) run(b testing.TB, n, workers int) (latencies []time.Duration, wrong int64) {
	bodies := make([][]byte, len(f.cases))
	for i, c := range f.cases {
		bodies[i] = reviewBody(b, podKind, admissionv1.Create, "default", podObject(c.image), nil)
	}
	var next atomic.Int64
	var wrongs atomic.Int64
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					break
				}
				c := i % len(f.cases)
				start := time.Now()
				admitted, err := f.review(b, bodies[c])
				mine = append(mine, time.Since(start))
				if err != nil || admitted != f.cases[c].admit {
					wrongs.Add(1)
				}
			}
			mu.Lock()
			latencies = append(latencies, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	return latencies, wrongs.Load()
}

func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s))*p))]
}

// BenchmarkCacheHit: reviews of images whose decisions are cached (tags
// are still resolved at the registry), from a bounded pool of concurrent
// clients: throughput, p50 and p99 latency, wrong decisions.
func BenchmarkCacheHit(b *testing.B) {
	f := newBenchFixture(b)
	if _, wrong := f.run(b, len(f.cases), 1); wrong != 0 { // warm the cache
		b.Fatalf("%d wrong decisions while warming up", wrong)
	}
	b.ResetTimer()
	start := time.Now()
	lat, wrong := f.run(b, b.N, benchWorkers)
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "reviews/s")
	b.ReportMetric(float64(percentile(lat, 0.50).Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(percentile(lat, 0.99).Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(wrong), "wrong-decisions")
}

// BenchmarkCacheHitReleaseIndex: BenchmarkCacheHit's load twice in one
// run, without and with a release index that every signed image is
// released in (each decision then also checks the tag or digest against
// the verified index in memory); reports what the index adds to the p50
// of a cached admission.
func BenchmarkCacheHitReleaseIndex(b *testing.B) {
	plain, indexed := newBenchFixture(b), newBenchFixtureRelease(b, true)
	for _, f := range []*benchFixture{plain, indexed} {
		if _, wrong := f.run(b, len(f.cases), 1); wrong != 0 {
			b.Fatalf("%d wrong decisions while warming up", wrong)
		}
	}
	b.ResetTimer()
	var without, with []time.Duration
	var wrong int64
	// Alternate in rounds so that machine load falls on both alike.
	for done := 0; done < b.N; {
		n := min(500, b.N-done)
		l1, w1 := plain.run(b, n, benchWorkers)
		l2, w2 := indexed.run(b, n, benchWorkers)
		without, with = append(without, l1...), append(with, l2...)
		wrong += w1 + w2
		done += n
	}
	b.StopTimer()
	p50, p50r := percentile(without, 0.50), percentile(with, 0.50)
	b.ReportMetric(float64(p50.Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(p50r.Microseconds())/1000, "release-p50-ms")
	b.ReportMetric(float64((p50r-p50).Microseconds())/1000, "added-p50-ms")
	b.ReportMetric(float64(percentile(with, 0.99).Microseconds())/1000, "release-p99-ms")
	b.ReportMetric(float64(wrong), "wrong-decisions")
}

// BenchmarkReleaseCheck is the index lookup a decision adds, alone.
func BenchmarkReleaseCheck(b *testing.B) {
	f := newReleaseFixture(b)
	reg := newMemRegistry(b)
	var ps []pushed
	for i := range 64 {
		img, _, _ := randomImage(b)
		p := push(b, reg.host, "bench/app", "v"+string(rune('a'+i%26))+string(rune('a'+i/26)), img, nil)
		f.release(b, p, nil)
		ps = append(ps, p)
	}
	ix, err := f.client.Refresh(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	b.ResetTimer()
	for i := range b.N {
		p := ps[i%len(ps)]
		ref, _ := name.ParseReference(p.tag)
		if _, err := ix.Verify(ref.Context().RepositoryStr(), ref.Identifier(), p.digest, now); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkColdVerification: every review verifies from scratch (cache
// off), one at a time so that no verification is shared: registry round
// trips for the tag, manifest, referrers and bundles, then the signature and
// policy checks. p50 and p99 latency, wrong decisions.
func BenchmarkColdVerification(b *testing.B) {
	f := newBenchFixture(b, WithCacheTTL(0))
	b.ResetTimer()
	start := time.Now()
	lat, wrong := f.run(b, b.N, 1)
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "reviews/s")
	b.ReportMetric(float64(percentile(lat, 0.50).Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(percentile(lat, 0.99).Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(wrong), "wrong-decisions")
}
