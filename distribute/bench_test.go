package distribute_test

import (
	"context"
	"os/exec"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/twinforge/twinforge/distribute"
	"github.com/twinforge/twinforge/internal/regtest"
)

// BenchmarkReplicate copies one image (4 layers of 2 MiB) to 3 fresh local
// registries with Replicate, against 3 sequential `crane copy` runs of the
// same image to 3 other fresh registries, in the same run. Target: ≥ 2.5×
// faster. Then it re-replicates content that is already there. Target:
// ≤ 50 ms.
func BenchmarkReplicate(b *testing.B) {
	regtest.NeedRegistry(b)
	crane := regtest.Binary(b, "crane")
	src := regtest.StartDistribution(b)
	img, err := random.Image(2<<20, 4)
	if err != nil {
		b.Fatal(err)
	}
	d, _ := img.Digest()
	srcRef, _ := name.ParseReference(src.Host+"/bench/app@"+d.String(), name.Insecure)
	if err := remote.Write(srcRef, img); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	var tOurs, tCrane, tAgain time.Duration
	for i := 0; i < b.N; i++ {
		var ours, theirs []name.Repository
		for range 3 {
			r, _ := name.NewRepository(regtest.StartDistribution(b).Host+"/bench/app", name.Insecure)
			ours = append(ours, r)
			r2, _ := name.NewRepository(regtest.StartDistribution(b).Host+"/bench/app", name.Insecure)
			theirs = append(theirs, r2)
		}
		start := time.Now()
		for _, r := range theirs {
			if out, err := exec.Command(crane, "copy", "--insecure", srcRef.String(), r.String()+"@"+d.String()).CombinedOutput(); err != nil {
				b.Fatalf("crane copy: %v\n%s", err, out)
			}
		}
		tCrane += time.Since(start)

		start = time.Now()
		if _, err := distribute.Replicate(ctx, srcRef, ours, distribute.WithInsecureLoopbackUnsafe()); err != nil {
			b.Fatal(err)
		}
		tOurs += time.Since(start)

		start = time.Now()
		res, err := distribute.Replicate(ctx, srcRef, ours, distribute.WithInsecureLoopbackUnsafe())
		if err != nil {
			b.Fatal(err)
		}
		tAgain += time.Since(start)
		for _, r := range res {
			if !r.Skipped {
				b.Fatalf("re-replication copied to %s", r.Repository)
			}
		}
	}
	n := float64(b.N)
	b.ReportMetric(tOurs.Seconds()*1000/n, "replicate-ms/op")
	b.ReportMetric(tCrane.Seconds()*1000/n, "crane-copy-x3-ms/op")
	b.ReportMetric(tCrane.Seconds()/tOurs.Seconds(), "speedup")
	b.ReportMetric(tAgain.Seconds()*1000/n, "re-replicate-ms/op")
}
