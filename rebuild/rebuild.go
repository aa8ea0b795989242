package rebuild

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/moby/buildkit/client"
	"github.com/opencontainers/go-digest"

	"github.com/twinforge/twinforge/builder"
	"github.com/twinforge/twinforge/isolation"
	"github.com/twinforge/twinforge/rebuild/imagediff"
)

// ErrNotReproducible is returned when the two builds give different images.
var ErrNotReproducible = errors.New("not reproducible")

// DiffError says how the build and the rebuild differ. It wraps
// ErrNotReproducible.
type DiffError struct {
	Build, Rebuild *builder.Result
	Report         *imagediff.Report
}

func (e *DiffError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "build gave %s but the rebuild gave %s", e.Build.Digest, e.Rebuild.Digest)
	if e.Report != nil {
		var files []string
		for _, l := range e.Report.Layers {
			for _, f := range l.Files {
				if f.Path != "" {
					files = append(files, f.Path)
				}
			}
		}
		if len(files) > 0 {
			if len(files) > 5 {
				files = append(files[:5], fmt.Sprintf("and %d more", len(files)-5))
			}
			fmt.Fprintf(&b, "; files that differ: %s", strings.Join(files, ", "))
		}
	}
	return b.String()
}

func (e *DiffError) Unwrap() error { return ErrNotReproducible }

// Result is a verified build: both results and what was varied.
type Result struct {
	Build      *builder.Result
	Rebuild    *builder.Result
	Variations []Variation
}

// Variation is one difference between the build and the rebuild.
type Variation struct {
	Name    string `json:"name"`
	Build   string `json:"build"`
	Rebuild string `json:"rebuild"`
}

func (v Variation) String() string { return fmt.Sprintf("%s: %s → %s", v.Name, v.Build, v.Rebuild) }

// Option configures Verify.
type Option func(*options) error

type options struct {
	offset   time.Duration
	hostname string
	ulimit   string
	progress chan<- *client.SolveStatus
	layout   string
}

// WithStartOffset delays the rebuild's start, so that wall-clock time leaks
// show. The default value is one second; it must be at least that.
func WithStartOffset(d time.Duration) Option {
	return func(o *options) error {
		if d < time.Second {
			return fmt.Errorf("rebuild start offset %v: must be at least 1s", d)
		}
		o.offset = d
		return nil
	}
}

// WithHostname sets the hostname the rebuild's steps see. The default value
// is "twinforge-rebuild".
func WithHostname(name string) Option {
	return func(o *options) error { o.hostname = name; return nil }
}

// WithProgress receives both builds' status; the rebuild's steps are
// prefixed "[rebuild]". Verify closes the channel.
func WithProgress(ch chan<- *client.SolveStatus) Option {
	return func(o *options) error { o.progress = ch; return nil }
}

// WithRebuildLayout sets where the rebuild's layout is written. The default
// is the build's layout path with "-rebuild" appended.
func WithRebuildLayout(dir string) Option {
	return func(o *options) error { o.layout = dir; return nil }
}

// RebuildUlimit is the open-files limit the rebuild's steps run under,
// against BuildKit's default for the build.
const RebuildUlimit = "nofile=4096:4096"

// Verify builds req on build and, concurrently, on rebuild, and compares the
// digests. If either build fails the other is stopped and the error says
// which failed. Both layouts are kept.
func Verify(ctx context.Context, build, rebuild builder.Builder, req builder.Request, opts ...Option) (*Result, error) {
	o := &options{offset: time.Second, hostname: "twinforge-rebuild", ulimit: RebuildUlimit}
	for _, opt := range opts {
		if err := opt(o); err != nil {
			if o.progress != nil {
				close(o.progress)
			}
			return nil, err
		}
	}
	progress := newMerger(o.progress)
	defer progress.close()

	rreq := req
	rreq.Hostname = o.hostname
	rreq.Ulimit = o.ulimit
	switch {
	case o.layout != "":
		rreq.OCILayout = o.layout
	case req.OCILayout != "":
		rreq.OCILayout = req.OCILayout + "-rebuild"
	}
	req.Progress = progress.stream("")
	rreq.Progress = progress.stream("[rebuild] ")

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
		results  [2]*builder.Result
	)
	// The first build to fail stops the other; its error is the one reported.
	fail := func(name string, err error) {
		mu.Lock()
		defer mu.Unlock()
		if firstErr == nil {
			firstErr = fmt.Errorf("%s failed: %w", name, err)
			cancel(errOther)
		}
	}
	run := func(i int, b builder.Builder, r builder.Request, name string, delay time.Duration) {
		defer wg.Done()
		if delay > 0 {
			select {
			case <-time.After(delay):
			case <-ctx.Done():
				close(r.Progress)
				return
			}
		}
		res, err := b.Build(ctx, r)
		if err != nil {
			if !errors.Is(context.Cause(ctx), errOther) {
				fail(name, err)
			}
			return
		}
		results[i] = res
	}
	wg.Add(2)
	go run(0, build, req, "build", 0)
	go run(1, rebuild, rreq, "rebuild", o.offset)
	wg.Wait()
	progress.close()
	if firstErr != nil {
		return nil, firstErr
	}
	if err := ctx.Err(); err != nil || results[0] == nil || results[1] == nil {
		return nil, fmt.Errorf("verified build interrupted: %w", context.Cause(ctx))
	}
	res := &Result{Build: results[0], Rebuild: results[1], Variations: variations(results[0], results[1], req, rreq, o)}
	if res.Build.Digest == res.Rebuild.Digest {
		return res, nil
	}
	diffErr := &DiffError{Build: res.Build, Rebuild: res.Rebuild}
	report, err := compareLayouts(ctx, res.Build, res.Rebuild)
	if err != nil {
		return res, fmt.Errorf("%w (and comparing them failed: %v)", diffErr, err)
	}
	diffErr.Report = report
	return res, diffErr
}

// errOther marks the build that was stopped because the other one failed.
var errOther = errors.New("stopped because the other build failed")

func compareLayouts(ctx context.Context, a, b *builder.Result) (*imagediff.Report, error) {
	ia, err := imagediff.Load(ctx, a.OCILayout+"@"+a.Digest)
	if err != nil {
		return nil, err
	}
	ib, err := imagediff.Load(ctx, b.OCILayout+"@"+b.Digest)
	if err != nil {
		return nil, err
	}
	return imagediff.Compare(ctx, ia, ib)
}

// variations lists what differed between the two builds.
func variations(a, b *builder.Result, ra, rb builder.Request, o *options) []Variation {
	v := []Variation{{Name: "start offset", Build: "0s", Rebuild: o.offset.String()}}
	add := func(name, x, y string) {
		if x != y {
			v = append(v, Variation{Name: name, Build: x, Rebuild: y})
		}
	}
	add("hostname", or(ra.Hostname, "buildkitsandbox"), rb.Hostname)
	add("ulimit", or(ra.Ulimit, "daemon default"), rb.Ulimit)
	add("snapshotter", a.Builder.Snapshotter, b.Builder.Snapshotter)
	add("cpus", cpus(a.Builder), cpus(b.Builder))
	add("umask", or(a.Builder.Umask, "0022"), or(b.Builder.Umask, "0022"))
	add("tz", or(a.Builder.TZ, "UTC"), or(b.Builder.TZ, "UTC"))
	add("daemon", a.Builder.Address, b.Builder.Address)
	return v
}

func cpus(i isolation.Info) string {
	if i.CPUSet == "" {
		return "all"
	}
	return "cpuset " + i.CPUSet
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// merger feeds two builds' status into one channel, renaming the second
// build's steps so a display keeps them apart: both daemons solve the same
// graph, so their vertex digests are equal.
type merger struct {
	out  chan<- *client.SolveStatus
	wg   sync.WaitGroup
	once sync.Once
}

func newMerger(out chan<- *client.SolveStatus) *merger { return &merger{out: out} }

func (m *merger) stream(prefix string) chan *client.SolveStatus {
	ch := make(chan *client.SolveStatus)
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		for s := range ch {
			if m.out != nil {
				m.out <- relabel(s, prefix)
			}
		}
	}()
	return ch
}

func (m *merger) close() {
	m.once.Do(func() {
		m.wg.Wait()
		if m.out != nil {
			close(m.out)
		}
	})
}

func relabel(s *client.SolveStatus, prefix string) *client.SolveStatus {
	if prefix == "" {
		return s
	}
	re := func(d digest.Digest) digest.Digest { return digest.FromString(prefix + d.String()) }
	out := &client.SolveStatus{}
	for _, v := range s.Vertexes {
		c := *v
		c.Digest = re(v.Digest)
		c.Name = prefix + v.Name
		c.Inputs = nil
		for _, in := range v.Inputs {
			c.Inputs = append(c.Inputs, re(in))
		}
		out.Vertexes = append(out.Vertexes, &c)
	}
	for _, st := range s.Statuses {
		c := *st
		c.Vertex = re(st.Vertex)
		out.Statuses = append(out.Statuses, &c)
	}
	for _, l := range s.Logs {
		c := *l
		c.Vertex = re(l.Vertex)
		out.Logs = append(out.Logs, &c)
	}
	for _, w := range s.Warnings {
		c := *w
		c.Vertex = re(w.Vertex)
		out.Warnings = append(out.Warnings, &c)
	}
	return out
}
