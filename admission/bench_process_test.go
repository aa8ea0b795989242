package admission

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"testing"
	"time"
)

// The pinned benchmarks run the webhook (with the registry it resolves
// tags at) and the load generator as two processes of this test binary,
// each on a core of its own with taskset, so that the generator does not
// take the server's CPU; the unpinned one runs the same two processes
// where the scheduler puts them. Both report the same metrics as
// BenchmarkCacheHit, where server and generator share one process.
const (
	envBenchServer = "TWINFORGE_BENCH_ADMISSION_SERVER"
	envBenchLoad   = "TWINFORGE_BENCH_ADMISSION_LOAD"
	// processReviews is how many reviews one run of a process benchmark
	// sends; processWorkers how many are in flight at once.
	processReviews = 40000
	processWorkers = 4
)

// benchSetup is what the server process tells the generator.
type benchSetup struct {
	URL   string      `json:"url"`
	CA    string      `json:"ca"`
	Cases []benchCase `json:"cases"`
}

// benchLoad is what the generator measured.
type benchLoad struct {
	Rate  float64 `json:"rate"`
	P50   float64 `json:"p50"`
	P99   float64 `json:"p99"`
	Wrong int64   `json:"wrong"`
}

func (c benchCase) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Image string `json:"image"`
		Admit bool   `json:"admit"`
	}{c.image, c.admit})
}

func (c *benchCase) UnmarshalJSON(b []byte) error {
	var v struct {
		Image string `json:"image"`
		Admit bool   `json:"admit"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	c.image, c.admit = v.Image, v.Admit
	return nil
}

// TestBenchServerProcess is the server process of the process benchmarks:
// it serves the bench fixture, prints its setup and serves until its
// standard input closes. It does nothing in a test run.
func TestBenchServerProcess(t *testing.T) {
	if os.Getenv(envBenchServer) == "" {
		t.Skip("the server process of BenchmarkCacheHitPinned; runs only from it")
	}
	f := newBenchFixture(t)
	if _, wrong := f.run(t, len(f.cases), 1); wrong != 0 { // warm the cache
		t.Fatalf("%d wrong decisions while warming up", wrong)
	}
	if err := json.NewEncoder(os.Stdout).Encode(benchSetup{URL: f.url, CA: f.ca, Cases: f.cases}); err != nil {
		t.Fatal(err)
	}
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
}

// TestBenchLoadProcess is the generator process: it sends the reviews the
// setup in its environment names and prints what it measured.
func TestBenchLoadProcess(t *testing.T) {
	raw := os.Getenv(envBenchLoad)
	if raw == "" {
		t.Skip("the load generator process of BenchmarkCacheHitPinned; runs only from it")
	}
	var setup benchSetup
	if err := json.Unmarshal([]byte(raw), &setup); err != nil {
		t.Fatal(err)
	}
	client := httpsClient(t, setup.CA)
	client.Transport.(*http.Transport).DisableKeepAlives = false
	client.Transport.(*http.Transport).MaxIdleConnsPerHost = processWorkers
	f := &benchFixture{url: setup.URL, client: client, cases: setup.Cases}
	f.run(t, 2*len(f.cases)*processWorkers, processWorkers) // connections and TLS sessions
	start := time.Now()
	lat, wrong := f.run(t, processReviews, processWorkers)
	elapsed := time.Since(start)
	out := benchLoad{
		Rate:  float64(len(lat)) / elapsed.Seconds(),
		P50:   float64(percentile(lat, 0.50).Microseconds()) / 1000,
		P99:   float64(percentile(lat, 0.99).Microseconds()) / 1000,
		Wrong: wrong,
	}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		t.Fatal(err)
	}
}

// runProcesses starts the server process and then the generator, each
// under taskset on serverCPU and loadCPU when they are not empty, and
// returns what the generator measured.
func runProcesses(b *testing.B, serverCPU, loadCPU string) benchLoad {
	b.Helper()
	self, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	command := func(cpu string, args ...string) *exec.Cmd {
		if cpu == "" {
			return exec.Command(self, args...)
		}
		return exec.Command("taskset", append([]string{"-c", cpu, self}, args...)...)
	}
	srv := command(serverCPU, "-test.run=^TestBenchServerProcess$", "-test.count=1")
	srv.Env = append(os.Environ(), envBenchServer+"=1")
	srv.Stderr = os.Stderr
	stdin, err := srv.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := srv.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { stdin.Close(); srv.Wait() }()
	var setup benchSetup
	line, err := bufio.NewReader(stdout).ReadBytes('\n')
	if err != nil || json.Unmarshal(line, &setup) != nil {
		b.Fatalf("server process: %v (%q)", err, line)
	}
	raw, _ := json.Marshal(setup)
	load := command(loadCPU, "-test.run=^TestBenchLoadProcess$", "-test.count=1")
	load.Env = append(os.Environ(), envBenchLoad+"="+string(raw))
	load.Stderr = os.Stderr
	out, err := load.Output()
	if err != nil {
		b.Fatalf("load generator: %v\n%s", err, out)
	}
	var res benchLoad
	for _, l := range splitLines(out) {
		if json.Unmarshal(l, &res) == nil && res.Rate > 0 {
			return res
		}
	}
	b.Fatalf("load generator printed no result:\n%s", out)
	return res
}

func splitLines(b []byte) [][]byte {
	var out [][]byte
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		out = append(out, append([]byte(nil), sc.Bytes()...))
	}
	return out
}

func report(b *testing.B, res benchLoad) {
	b.ReportMetric(res.Rate, "reviews/s")
	b.ReportMetric(res.P50, "p50-ms")
	b.ReportMetric(res.P99, "p99-ms")
	b.ReportMetric(float64(res.Wrong), "wrong-decisions")
}

// BenchmarkCacheHitPinned: the CacheHit load with the webhook on CPU 0 and
// the load generator on CPU 1. Target: p99 ≤ 2 ms at ≥ 10,000 reviews/s.
func BenchmarkCacheHitPinned(b *testing.B) {
	if runtime.NumCPU() < 2 {
		b.Skip("needs two CPUs to pin the generator apart from the server")
	}
	if _, err := exec.LookPath("taskset"); err != nil {
		b.Skip("needs taskset (util-linux)")
	}
	for range b.N {
		report(b, runProcesses(b, "0", strconv.Itoa(runtime.NumCPU()-1)))
	}
}

// BenchmarkCacheHitUnpinned is BenchmarkCacheHitPinned's processes where
// the scheduler puts them: the same load, the other way.
func BenchmarkCacheHitUnpinned(b *testing.B) {
	for range b.N {
		report(b, runProcesses(b, "", ""))
	}
}
