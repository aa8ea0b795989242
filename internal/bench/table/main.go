// Command table reads the output of `go test -bench` for twinforge's
// benchmarks on stdin and prints one row per target: what was measured,
// against what, the ratio and whether the target was met. `make bench`
// runs it on the raw output it appends to bench/results.txt.
package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
)

// target is one line of the table: a benchmark's metric held to a bound.
type target struct {
	bench, metric string
	// name says what is compared; bound is the limit and atMost whether
	// the metric must stay at or below it (else at or above).
	name   string
	bound  float64
	atMost bool
	// ours and theirs, when set, are the metrics shown as "measured".
	ours, theirs, unit string
}

var targets = []target{
	{bench: "BuildHello", metric: "ratio", name: "build vs buildctl build", bound: 1.05, atMost: true, ours: "twinforge-s/op", theirs: "buildctl-s/op", unit: "s"},
	{bench: "VerifiedBuildHello", metric: "ratio", name: "verified build (cold) vs 2 concurrent buildctl builds", bound: 1.10, atMost: true, ours: "twinforge-s/op", theirs: "buildctl-s/op", unit: "s"},
	{bench: "VerifiedBuildHelloOtherWorker", metric: "ratio", name: "verified build, rebuild on another worker, vs 1 buildctl build", bound: 1.10, atMost: true, ours: "twinforge-s/op", theirs: "buildctl-s/op", unit: "s"},
	{bench: "IncrementalVerifiedBuild", metric: "ratio", name: "one-line change, warm per-side caches, vs buildctl warm rebuild", bound: 1.25, atMost: true, ours: "twinforge-s/op", theirs: "buildctl-s/op", unit: "s"},
	{bench: "IncrementalVerifiedBuildCacheMount", metric: "ratio", name: "the same, Go build cache on a cache mount", bound: 1.25, atMost: true, ours: "twinforge-s/op", theirs: "buildctl-s/op", unit: "s"},
	{bench: "Replicate", metric: "speedup", name: "replicate to 3 registries vs 3 sequential crane copy", bound: 2.5, atMost: false, ours: "replicate-ms/op", theirs: "crane-copy-x3-ms/op", unit: "ms"},
	{bench: "Replicate", metric: "re-replicate-ms/op", name: "re-replicate content already there (ms)", bound: 50, atMost: true},
	{bench: "CacheHit", metric: "p99-ms", name: "admission cache hit p99 (ms), same cores", bound: 2, atMost: true},
	{bench: "CacheHit", metric: "reviews/s", name: "admission cache hit throughput, same cores", bound: 10000, atMost: false},
	{bench: "CacheHitPinned", metric: "p99-ms", name: "admission cache hit p99 (ms), load generator on its own core", bound: 2, atMost: true},
	{bench: "CacheHitPinned", metric: "reviews/s", name: "admission cache hit throughput, load generator on its own core", bound: 10000, atMost: false},
	{bench: "ColdVerification", metric: "p50-ms", name: "admission cold verification p50 (ms)", bound: 30, atMost: true},
	{bench: "ProvenanceAndKeylessSignTSA", metric: "ns/op", name: "provenance + keyless signing (ms)", bound: 100e6, atMost: true},
	{bench: "VerifyOffline", metric: "ns/op", name: "offline verification (ms)", bound: 10e6, atMost: true},
}

func main() {
	results, err := parse(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "table:", err)
		os.Exit(1)
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "target\tmeasured\tratio\tbound\tmet")
	for _, t := range targets {
		m, ok := results[t.bench]
		v, has := m[t.metric]
		if !ok || !has {
			fmt.Fprintf(tw, "%s\tnot run\t\t%s\tnot run\n", t.name, bound(t))
			continue
		}
		scale := 1.0
		if t.metric == "ns/op" {
			scale = 1e-6
		}
		measured := fmt.Sprintf("%.3g", v*scale)
		ratio := ""
		if t.ours != "" {
			measured = fmt.Sprintf("%.3g %s vs %.3g %s", m[t.ours], t.unit, m[t.theirs], t.unit)
			ratio = fmt.Sprintf("%.3f", v)
		}
		met := v <= t.bound
		if !t.atMost {
			met = v >= t.bound
		}
		verdict := "met"
		if !met {
			verdict = "MISSED"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", t.name, measured, ratio, bound(t), verdict)
	}
	tw.Flush()
}

func bound(t target) string {
	b := t.bound
	if t.metric == "ns/op" {
		b *= 1e-6
	}
	if t.atMost {
		return fmt.Sprintf("≤ %g", b)
	}
	return fmt.Sprintf("≥ %g", b)
}

// parse reads benchmark lines ("BenchmarkX-2  3  123 ns/op  1.5 ratio")
// into metrics by benchmark name, without the -GOMAXPROCS suffix.
func parse(r io.Reader) (map[string]map[string]float64, error) {
	out := map[string]map[string]float64{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		name := strings.TrimPrefix(f[0], "Benchmark")
		if i := strings.LastIndex(name, "-"); i > 0 {
			name = name[:i]
		}
		m := map[string]float64{}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			m[f[i+1]] = v
		}
		out[name] = m
	}
	return out, sc.Err()
}
