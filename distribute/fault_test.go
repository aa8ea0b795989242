package distribute_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/twinforge/twinforge/distribute"
	"github.com/twinforge/twinforge/internal/regtest"
)

// Faults a push must get through: retries make it succeed.
func TestPushSurvivesFaults(t *testing.T) {
	regtest.NeedRegistry(t)
	tests := []struct {
		name   string
		faults []regtest.Fault
	}{
		{"connection dropped mid-upload", []regtest.Fault{regtest.DropAfter(regtest.BlobPatch(), 256<<10)}},
		{"500 on blob uploads", []regtest.Fault{regtest.FailFirst(regtest.BlobUpload(), 2, 500)}},
		{"503 on a manifest PUT", []regtest.Fault{regtest.FailFirst(regtest.ManifestPut(), 1, 503)}},
		{"connection dropped mid-download during read-back", []regtest.Fault{regtest.DropAfter(regtest.BlobGet(), 1000)}},
		{"500 on read-back", []regtest.Fault{regtest.FailFirst(regtest.BlobGet(), 2, 500), regtest.FailFirst(regtest.ManifestGet(), 1, 500)}},
		{"502 on the referrers probe", []regtest.Fault{regtest.FailFirst(regtest.ReferrersGet(), 1, 502)}},
		{"slow manifest PUTs", []regtest.Fault{regtest.Delay(regtest.ManifestPut(), 20*time.Millisecond)}},
	}
	tally := regtest.NewFaultTally(t)
	for _, kind := range registryKinds {
		reg := kind.start(t)
		for _, tt := range tests {
			t.Run(kind.name+"/"+tt.name, func(t *testing.T) {
				proxy := regtest.NewFaultProxy(t, reg.Host, tt.faults...)
				defer func() { tally.Record(t, proxy.Injected()) }()
				_, img := newLayout(t)
				repo := "faults/" + strings.ToLower(strings.ReplaceAll(tt.name, " ", "-"))
				res, err := distribute.Push(context.Background(), img, mustRef(t, proxy.Host+"/"+repo+":v1"), testArtifacts(),
					distribute.WithInsecureLoopbackUnsafe(), fastRetries, distribute.WithBlobReadBack())
				if err != nil {
					t.Fatalf("Push: %v", err)
				}
				if got := crane(t, "digest", reg.Host+"/"+repo+":v1"); got != res.Digest.String() || got != digestOf(t, img) {
					t.Errorf("crane digest = %s, want %s", got, res.Digest)
				}
				if n := len(referrersOf(t, reg, repo, res.Digest.String())); n != 2 {
					t.Errorf("%d referrers listed, want 2", n)
				}
			})
		}
	}
}

// Faults a push must not get through: it fails, and no tag points at
// anything missing or corrupt.
func TestPushFailsClosed(t *testing.T) {
	regtest.NeedRegistry(t)
	rewrite := func(b []byte) []byte {
		return bytes.Replace(b, []byte(`"schemaVersion":2`), []byte(`"schemaVersion": 2`), 1)
	}
	tests := []struct {
		name             string
		faults           func(digest string) []regtest.Fault
		wantVerification bool
		want             string
	}{
		{"corrupt blob on read-back", func(string) []regtest.Fault {
			return []regtest.Fault{regtest.Corrupt(regtest.BlobGet())}
		}, true, "digest"},
		{"registry serves another manifest", func(d string) []regtest.Fault {
			return []regtest.Fault{regtest.Rewrite(regtest.All(regtest.ManifestGet(), regtest.PathContains(d)), rewrite)}
		}, true, "manifest"},
		{"registry keeps failing uploads", func(string) []regtest.Fault {
			return []regtest.Fault{regtest.FailFirst(regtest.BlobUpload(), 1000, 500)}
		}, false, "500"},
		{"blob corrupted mid-upload", func(string) []regtest.Fault {
			return []regtest.Fault{regtest.CorruptUpload(regtest.BlobPatch())}
		}, false, "digest"},
		{"blob corrupted mid-upload then the connection dropped", func(string) []regtest.Fault {
			return []regtest.Fault{regtest.CorruptUpload(regtest.BlobPatch()).Times(1), regtest.DropAfter(regtest.BlobPatch(), 1000)}
		}, false, "digest"},
		{"registry keeps failing tag writes", func(string) []regtest.Fault {
			// the referrers tag schema index, or else the tag move itself
			return []regtest.Fault{regtest.FailFirst(regtest.All(regtest.ManifestPut(), notPath("/manifests/sha256:")), 1000, 503)}
		}, false, "503"},
	}
	tally := regtest.NewFaultTally(t)
	for _, kind := range registryKinds {
		reg := kind.start(t)
		for _, tt := range tests {
			t.Run(kind.name+"/"+tt.name, func(t *testing.T) {
				_, img := newLayout(t)
				digest := digestOf(t, img)
				proxy := regtest.NewFaultProxy(t, reg.Host, tt.faults(digest)...)
				defer func() { tally.Record(t, proxy.Injected()) }()
				repo := "closed/" + strings.ToLower(strings.ReplaceAll(tt.name, " ", "-"))
				_, err := distribute.Push(context.Background(), img, mustRef(t, proxy.Host+"/"+repo+":v1"), testArtifacts(),
					distribute.WithInsecureLoopbackUnsafe(), fastRetries, distribute.WithBlobReadBack())
				if err == nil {
					t.Fatal("Push succeeded")
				}
				t.Logf("error: %v", err)
				if errors.Is(err, distribute.ErrVerification) != tt.wantVerification || !strings.Contains(err.Error(), tt.want) {
					t.Errorf("error %q: want ErrVerification %v and %q", err, tt.wantVerification, tt.want)
				}
				for _, tag := range reg.Tags(t, repo) {
					if tag == "v1" {
						t.Errorf("tag v1 was moved although the push failed")
					}
				}
				assertNoDanglingTags(t, reg, repo)
				// Nothing the failed push left behind stands in the way of
				// the next one.
				res, err := distribute.Push(context.Background(), img, mustRef(t, reg.Host+"/"+repo+":v1"), testArtifacts(),
					distribute.WithInsecureLoopbackUnsafe(), fastRetries, distribute.WithBlobReadBack())
				if err != nil {
					t.Fatalf("the push after the failed one: %v", err)
				}
				if got := crane(t, "digest", reg.Host+"/"+repo+":v1"); got != res.Digest.String() || got != digest {
					t.Errorf("after the failed push, crane digest = %s, want %s", got, digest)
				}
			})
		}
	}
}

// notPath matches requests whose path lacks s.
func notPath(s string) regtest.Matcher {
	return func(r *http.Request) bool { return !strings.Contains(r.URL.Path, s) }
}

func TestReplicateSurvivesFaults(t *testing.T) {
	srcReg := regtest.StartDistribution(t)
	src := pushSource(t, srcReg, "src/app")
	srcProxy := regtest.NewFaultProxy(t, srcReg.Host,
		regtest.DropAfter(regtest.BlobGet(), 300<<10),
		regtest.FailFirst(regtest.ManifestGet(), 1, 500),
		regtest.FailFirst(regtest.ReferrersGet(), 1, 503),
	)
	dist, refs := regtest.StartDistribution(t), regtest.StartReferrers(t)
	distProxy := regtest.NewFaultProxy(t, dist.Host,
		regtest.FailFirst(regtest.BlobUpload(), 2, 500),
		regtest.DropAfter(regtest.BlobPatch(), 100<<10),
		regtest.FailFirst(regtest.ManifestPut(), 1, 502),
	)
	refsProxy := regtest.NewFaultProxy(t, refs.Host,
		regtest.DropAfter(regtest.BlobGet(), 10), // during read-back
		regtest.FailFirst(regtest.ManifestPut(), 2, 503),
	)
	srcRef := mustDigest(t, srcProxy.Host+"/src/app@"+src.digest)
	results, err := distribute.Replicate(context.Background(), srcRef,
		[]name.Repository{mustRepo(t, distProxy.Host+"/eu/app"), mustRepo(t, refsProxy.Host+"/us/app")},
		distribute.WithInsecureLoopbackUnsafe(), fastRetries, distribute.WithBlobReadBack())
	if err != nil {
		t.Fatalf("Replicate: %v", err)
	}
	tally := regtest.NewFaultTally(t)
	for _, p := range []*regtest.FaultProxy{srcProxy, distProxy, refsProxy} {
		tally.Record(t, p.Injected())
	}
	for i, r := range results {
		if r.Err != nil || r.Digest.String() != src.digest || len(r.Referrers) != 2 {
			t.Errorf("result %d = %+v", i, r)
		}
	}
	assertCopy(t, src, dist, "eu/app")
	assertCopy(t, src, refs, "us/app")
}

// One bad destination among good ones: the good ones get verified copies,
// the bad ones fail with a clear error, and nothing dangles anywhere.
func TestReplicateIsolatesFailures(t *testing.T) {
	srcReg := regtest.StartReferrers(t)
	src := pushSource(t, srcReg, "src/app")
	good1, good2 := regtest.StartDistribution(t), regtest.StartReferrers(t)
	corrupt, rewrite, down := regtest.StartDistribution(t), regtest.StartReferrers(t), regtest.StartDistribution(t)
	corruptProxy := regtest.NewFaultProxy(t, corrupt.Host, regtest.Corrupt(regtest.BlobGet()))
	rewriteProxy := regtest.NewFaultProxy(t, rewrite.Host, regtest.Rewrite(
		regtest.All(regtest.ManifestGet(), regtest.PathContains(src.digest)),
		func(b []byte) []byte { return append(b, '\n') }))
	downProxy := regtest.NewFaultProxy(t, down.Host, regtest.FailFirst(regtest.ManifestPut(), 1000, 500))

	dests := []name.Repository{
		mustRepo(t, good1.Host+"/a/app"),
		mustRepo(t, corruptProxy.Host+"/b/app"),
		mustRepo(t, rewriteProxy.Host+"/c/app"),
		mustRepo(t, good2.Host+"/d/app"),
		mustRepo(t, downProxy.Host+"/e/app"),
	}
	results, err := distribute.Replicate(context.Background(), src.ref(t), dests, distribute.WithInsecureLoopbackUnsafe(), fastRetries, distribute.WithJobs(5), distribute.WithBlobReadBack())
	if err == nil {
		t.Fatal("Replicate succeeded with three bad destinations")
	}
	t.Logf("error: %v", err)
	if !strings.Contains(err.Error(), "3 of 5") {
		t.Errorf("error %q does not count the failures", err)
	}
	for i, want := range []struct {
		ok           bool
		verification bool
	}{{true, false}, {false, true}, {false, true}, {true, false}, {false, false}} {
		r := results[i]
		if r.Repository != dests[i] {
			t.Errorf("result %d is for %s, want %s", i, r.Repository, dests[i])
		}
		if want.ok {
			if r.Err != nil || r.Digest.String() != src.digest || len(r.Referrers) != 2 {
				t.Errorf("good destination %s: %+v", dests[i], r)
			}
			continue
		}
		if r.Err == nil || r.Digest.Hex != "" {
			t.Errorf("bad destination %s: %+v", dests[i], r)
			continue
		}
		if errors.Is(r.Err, distribute.ErrVerification) != want.verification {
			t.Errorf("destination %s: %v, want ErrVerification %v", dests[i], r.Err, want.verification)
		}
		if !strings.Contains(err.Error(), dests[i].String()) {
			t.Errorf("the joined error does not name %s", dests[i])
		}
	}
	assertCopy(t, src, good1, "a/app")
	assertCopy(t, src, good2, "d/app")
	assertNoDanglingTags(t, corrupt, "b/app")
	assertNoDanglingTags(t, rewrite, "c/app")
	assertNoDanglingTags(t, down, "e/app")
}

// Corruption on the way, from the source or to the destination: the
// copy fails with an error naming the bad digest, the destination has
// nothing that points at a missing or corrupt blob, and the next
// replication copies the image whole.
func TestReplicateFailsClosed(t *testing.T) {
	regtest.NeedRegistry(t)
	tally := regtest.NewFaultTally(t)
	for _, tt := range []struct {
		name     string
		src, dst []regtest.Fault
	}{
		{"source blob corrupted in transit", []regtest.Fault{regtest.Corrupt(regtest.BlobGet())}, nil},
		{"destination upload corrupted", nil, []regtest.Fault{regtest.CorruptUpload(regtest.BlobPatch())}},
		{"source connection dropped mid-blob, every time", []regtest.Fault{regtest.DropAfter(regtest.BlobGet(), 200<<10).Times(1000)}, nil},
	} {
		for _, kind := range registryKinds {
			t.Run(kind.name+"/"+tt.name, func(t *testing.T) {
				srcReg := regtest.StartDistribution(t)
				src := pushSource(t, srcReg, "src/app")
				dst := kind.start(t)
				srcProxy := regtest.NewFaultProxy(t, srcReg.Host, tt.src...)
				dstProxy := regtest.NewFaultProxy(t, dst.Host, tt.dst...)
				defer func() { tally.Record(t, srcProxy.Injected()+dstProxy.Injected()) }()
				results, err := distribute.Replicate(context.Background(), mustDigest(t, srcProxy.Host+"/src/app@"+src.digest),
					[]name.Repository{mustRepo(t, dstProxy.Host+"/eu/app")}, distribute.WithInsecureLoopbackUnsafe(), fastRetries, distribute.WithBlobReadBack())
				if err == nil {
					t.Fatal("Replicate succeeded through corruption")
				}
				t.Logf("error: %v", err)
				if r := results[0]; r.Err == nil || r.Digest != (v1.Hash{}) {
					t.Errorf("result %+v: want an error and no digest", r)
				}
				if dst.Exists(t, "eu/app", "manifests", src.digest) {
					t.Error("the image manifest arrived although a blob of it did not")
				}
				assertNoDanglingTags(t, dst, "eu/app")

				if _, err := distribute.Replicate(context.Background(), src.ref(t), []name.Repository{mustRepo(t, dst.Host+"/eu/app")},
					distribute.WithInsecureLoopbackUnsafe(), fastRetries, distribute.WithBlobReadBack()); err != nil {
					t.Fatalf("the replication after the failed one: %v", err)
				}
				assertCopy(t, src, dst, "eu/app")
			})
		}
	}
}

// A run interrupted mid-copy leaves blobs behind; the next run sends only
// what is missing and completes the copy.
func TestReplicateResumesAfterInterruption(t *testing.T) {
	regtest.NeedRegistry(t)
	tests := []struct {
		name  string
		start func(testing.TB) *regtest.Registry
		stall func(srcDigest string) regtest.Matcher
		// blobs the second run must upload: what the interrupted run had
		// not sent yet (the image has 4 blobs, the referrers 3 together).
		wantUploads int
	}{
		{"before the image manifest", registryKinds[0].start, func(d string) regtest.Matcher {
			return regtest.All(regtest.ManifestPut(), regtest.PathContains(d))
		}, 3},
		{"before the referrers tag", registryKinds[0].start, func(d string) regtest.Matcher {
			return regtest.All(regtest.ManifestPut(), regtest.PathContains(strings.Replace(d, ":", "-", 1)))
		}, 1},
		{"before a referrer manifest (referrers API)", registryKinds[1].start, func(d string) regtest.Matcher {
			return regtest.All(regtest.ManifestPut(), notPath(d))
		}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srcReg := regtest.StartReferrers(t)
			src := pushSource(t, srcReg, "src/app")
			dst := tt.start(t)
			stallFault, stalled := regtest.Stall(tt.stall(src.digest))
			first := regtest.NewFaultProxy(t, dst.Host, stallFault)

			ctx, cancel := context.WithCancel(context.Background())
			go func() { <-stalled; cancel() }()
			results, err := distribute.Replicate(ctx, src.ref(t), []name.Repository{mustRepo(t, first.Host+"/eu/app")}, distribute.WithInsecureLoopbackUnsafe())
			cancel()
			if err == nil || !errors.Is(results[0].Err, context.Canceled) {
				t.Fatalf("interrupted Replicate: %v, want context.Canceled", err)
			}
			assertNoDanglingTags(t, dst, "eu/app")

			second := regtest.NewFaultProxy(t, dst.Host)
			results, err = distribute.Replicate(context.Background(), src.ref(t), []name.Repository{mustRepo(t, second.Host+"/eu/app")}, distribute.WithInsecureLoopbackUnsafe())
			if err != nil {
				t.Fatalf("second Replicate: %v", err)
			}
			if r := results[0]; r.Skipped || r.Digest.String() != src.digest || len(r.Referrers) != 2 {
				t.Errorf("second run: %+v", r)
			}
			commits := 0
			for _, r := range second.Requests() {
				if r.Method == http.MethodPut && strings.Contains(r.Path, "/blobs/uploads/") {
					commits++
				}
			}
			if commits != tt.wantUploads {
				t.Errorf("second run uploaded %d blobs, want %d", commits, tt.wantUploads)
			}
			assertCopy(t, src, dst, "eu/app")
		})
	}
}

// TestReplicateResumesAfterKill kills a replicating process (this test
// binary, run again as TestHelperReplicate) while its image manifest PUT is
// held, then replicates again: only the referrers' blobs are still to send.
func TestReplicateResumesAfterKill(t *testing.T) {
	srcReg := regtest.StartDistribution(t)
	src := pushSource(t, srcReg, "src/app")
	dst := regtest.StartDistribution(t)
	stallFault, stalled := regtest.Stall(regtest.All(regtest.ManifestPut(), regtest.PathContains(src.digest)))
	first := regtest.NewFaultProxy(t, dst.Host, stallFault)

	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperReplicate$", "-test.count=1")
	cmd.Env = append(os.Environ(), "TWINFORGE_HELPER_SRC="+src.ref(t).String(), "TWINFORGE_HELPER_DST="+first.Host+"/eu/app")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case <-stalled:
		if err := cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		<-exited
	case err := <-exited:
		t.Fatalf("the helper finished before it could be killed: %v\n%s", err, out.String())
	}
	if dst.Exists(t, "eu/app", "manifests", src.digest) {
		t.Fatal("the image manifest arrived although its PUT was held")
	}
	assertNoDanglingTags(t, dst, "eu/app")

	second := regtest.NewFaultProxy(t, dst.Host)
	results, err := distribute.Replicate(context.Background(), src.ref(t), []name.Repository{mustRepo(t, second.Host+"/eu/app")}, distribute.WithInsecureLoopbackUnsafe())
	if err != nil {
		t.Fatalf("Replicate after the kill: %v", err)
	}
	if r := results[0]; r.Skipped || r.Digest.String() != src.digest || len(r.Referrers) != 2 {
		t.Errorf("after the kill: %+v", r)
	}
	commits := second.Count(func(r *http.Request) bool {
		return r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/blobs/uploads/")
	})
	if commits != 3 { // the referrers' empty config and two layers; the image's 4 blobs were in
		t.Errorf("after the kill %d blobs were uploaded, want 3", commits)
	}
	assertCopy(t, src, dst, "eu/app")
}

// TestHelperReplicate is the process TestReplicateResumesAfterKill kills.
func TestHelperReplicate(t *testing.T) {
	src, dst := os.Getenv("TWINFORGE_HELPER_SRC"), os.Getenv("TWINFORGE_HELPER_DST")
	if src == "" {
		t.Skip("runs only as the helper process of TestReplicateResumesAfterKill")
	}
	_, err := distribute.Replicate(context.Background(), mustDigest(t, src), []name.Repository{mustRepo(t, dst)}, distribute.WithInsecureLoopbackUnsafe())
	t.Fatalf("Replicate returned (%v); it should have been killed", err)
}
