package rebuild

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strconv"
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
	// Class is Deciding when the rebuild with the deciding variations
	// differs, Pinned when only the strict rebuild does and strict
	// variations were asked to fail (StrictFail).
	Class Class
}

func (e *DiffError) Error() string {
	var b strings.Builder
	if e.Class == Pinned {
		fmt.Fprintf(&b, "build gave %s but the strict rebuild gave %s, a difference only the pinned variations (umask, time zone) cause", e.Build.Digest, e.Rebuild.Digest)
	} else {
		fmt.Fprintf(&b, "build gave %s but the rebuild gave %s", e.Build.Digest, e.Rebuild.Digest)
	}
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

// StrictFailure says that a step failed in the strict rebuild where the
// rebuild without the pinned variations reproduced the build: with
// StrictFail, a difference only the pinned variations cause. It wraps
// ErrNotReproducible.
type StrictFailure struct {
	Build *builder.Result
	// Err is the strict rebuild's failure.
	Err error
}

func (e *StrictFailure) Error() string {
	return fmt.Sprintf("the rebuild reproduced %s but a step failed in the strict rebuild, under the pinned variations (umask, time zone) only: %v", e.Build.Digest, e.Err)
}

func (e *StrictFailure) Unwrap() []error { return []error{ErrNotReproducible, e.Err} }

// Class says what a variation's difference means for the verdict.
type Class string

const (
	// Deciding variations are those real builders differ in: start time,
	// hostname, CPU count, snapshotter, ulimits, daemon and state path,
	// kernel. An image that changes with one does not reproduce.
	Deciding Class = "deciding"
	// Pinned variations are those BuildKit fixes for every RUN step: the
	// umask (0022) and the time zone (UTC). An image that changes only
	// with them still reproduces on every BuildKit builder, so they are
	// varied only on request (WithStrictVariations) and warned about.
	Pinned Class = "pinned"
)

// ClassOf is the class of the variation called name.
func ClassOf(name string) Class {
	switch name {
	case "umask", "tz":
		return Pinned
	}
	return Deciding
}

// Strictness says whether Verify also varies what BuildKit pins, and what
// a difference from that means.
type Strictness string

const (
	// StrictOff varies only the deciding variations. The default.
	StrictOff Strictness = "off"
	// StrictWarn varies the pinned ones too and reports what they change
	// as warnings; the verdict stays the deciding variations'.
	StrictWarn Strictness = "warn"
	// StrictFail varies the pinned ones too and fails the build when they
	// change the image.
	StrictFail Strictness = "fail"
)

// ParseStrictness reads a --strict-variations value: off, warn or fail
// ("true", as a bare flag gives, is warn; "false" and "" are off).
func ParseStrictness(s string) (Strictness, error) {
	switch strings.ToLower(s) {
	case "", "off", "false":
		return StrictOff, nil
	case "warn", "true":
		return StrictWarn, nil
	case "fail":
		return StrictFail, nil
	}
	return "", fmt.Errorf("strict variations %q: use off, warn or fail", s)
}

// Result is a verified build: the results and what was varied.
type Result struct {
	Build *builder.Result
	// Rebuild is the rebuild whose digest decided the verdict: the one with
	// the deciding variations, or the strict rebuild when that one
	// reproduced the build (it carried the deciding variations too).
	Rebuild *builder.Result
	// Strict is the rebuild that also varied the pinned variations; nil
	// with StrictOff.
	Strict *builder.Result
	// Strictness is what was asked for.
	Strictness Strictness
	// Variations are the differences between the build and the rebuilds,
	// each with its class.
	Variations []Variation
	// Warnings name what only the pinned variations changed (StrictWarn
	// and StrictFail), each with its file and variation.
	Warnings []Warning
	// StrictReport is what differs between the build and the strict
	// rebuild, when the pinned variations changed the image.
	StrictReport *imagediff.Report
}

// Decided names the variations that decided the verdict: the deciding
// ones, and with StrictFail the pinned ones as well.
func (r *Result) Decided() []string {
	var out []string
	for _, v := range r.Variations {
		if v.Class == Deciding || r.Strictness == StrictFail {
			out = append(out, v.Name)
		}
	}
	return out
}

// Warned names the variations that were varied but could only warn: the
// pinned ones with StrictWarn.
func (r *Result) Warned() []string {
	var out []string
	for _, v := range r.Variations {
		if v.Class == Pinned && r.Strictness == StrictWarn {
			out = append(out, v.Name)
		}
	}
	return out
}

// Variation is one difference between the build and a rebuild.
type Variation struct {
	Name    string `json:"name"`
	Class   Class  `json:"class"`
	Build   string `json:"build"`
	Rebuild string `json:"rebuild"`
}

func (v Variation) String() string { return fmt.Sprintf("%s: %s → %s", v.Name, v.Build, v.Rebuild) }

// Warning is a difference that only a pinned variation caused: the image
// reproduces on BuildKit builders, which pin it, but not beyond.
type Warning struct {
	// Path is the file in the image; empty when the difference could not
	// be traced to a file.
	Path string `json:"path,omitempty"`
	// Variation is "umask", "tz", or "umask or tz" when the shape of the
	// difference does not say which.
	Variation string `json:"variation"`
	// Message says what depends on it, e.g. "mode depends on the umask;
	// BuildKit pins 0022, so it reproduces on BuildKit builders".
	Message string `json:"message"`
}

func (w Warning) String() string {
	if w.Path == "" {
		return w.Message
	}
	return w.Path + ": " + w.Message
}

// Option configures Verify.
type Option func(*options) error

type options struct {
	offset   time.Duration
	hostname string
	ulimit   string
	progress chan<- *client.SolveStatus
	layout   string
	strict   Strictness
	strictB  builder.Builder
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

// WithProgress receives every build's status, each side's steps prefixed
// with its name ("[build]", "[rebuild]", "[strict]") so that a display
// shows both at once, apart; steps BuildKit reused are marked cached as it
// reports them. Verify closes the channel.
func WithProgress(ch chan<- *client.SolveStatus) Option {
	return func(o *options) error { o.progress = ch; return nil }
}

// WithRebuildLayout sets where the rebuild's layout is written. The default
// is the build's layout path with "-rebuild" appended; the strict
// rebuild's gets "-strict".
func WithRebuildLayout(dir string) Option {
	return func(o *options) error { o.layout = dir; return nil }
}

// WithStrictVariations also varies what BuildKit pins, on strict: a
// builder whose daemon runs steps with another umask and time zone as well
// as the deciding variations (StrictDaemonOptions). The strict rebuild
// runs beside the build instead of the rebuild; only when it differs is
// the rebuild run, after it, to tell whether the deciding variations or
// only the pinned ones made the difference. So an image that reproduces
// under every variation costs no more than with StrictOff, the default.
func WithStrictVariations(mode Strictness, strict builder.Builder) Option {
	return func(o *options) error {
		if err := CheckStrictVariations(mode, strict); err != nil {
			return err
		}
		o.strict, o.strictB = mode, strict
		return nil
	}
}

// CheckStrictVariations reports whether mode is off, warn or fail, and a
// strict builder is given unless it is off.
func CheckStrictVariations(mode Strictness, strict builder.Builder) error {
	switch mode {
	case StrictOff:
	case StrictWarn, StrictFail:
		if strict == nil {
			return fmt.Errorf("strict variations %s: no strict builder given", mode)
		}
	default:
		return fmt.Errorf("strict variations %q: use off, warn or fail", mode)
	}
	return nil
}

// RebuildUlimit is the open-files limit the rebuild's steps run under,
// against BuildKit's default for the build.
const RebuildUlimit = "nofile=4096:4096"

// Verify builds req on build and, concurrently, on rebuild, and compares the
// digests. If either build fails the other is stopped and the error says
// which failed. Every layout is kept.
//
// With WithStrictVariations the strict builder takes the rebuild's place;
// if it does not give the build's digest, rebuild runs afterwards. Its
// digest decides: a difference there is a *DiffError of class Deciding. If
// it matches, what the strict rebuild changed is due to the pinned
// variations alone: Result.Warnings name it, and with StrictFail it is a
// *DiffError of class Pinned.
func Verify(ctx context.Context, build, rebuild builder.Builder, req builder.Request, opts ...Option) (*Result, error) {
	o := &options{offset: time.Second, hostname: "twinforge-rebuild", ulimit: RebuildUlimit, strict: StrictOff}
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

	rreq := o.rebuildRequest(req, "-rebuild", o.layout)
	second, name := rebuild, "rebuild"
	sreq := rreq
	if o.strict != StrictOff {
		sreq = o.rebuildRequest(req, "-strict", "")
		second, name = o.strictB, "strict rebuild"
	}
	req.Progress = progress.stream(prefix("build"))
	sreq.Progress = progress.stream(prefix(name))
	results, strictErr, err := pair(ctx, build, req, second, sreq, name, o.offset, o.strict != StrictOff)
	if err != nil {
		return nil, err
	}
	res := &Result{Build: results[0], Strictness: o.strict}
	if strictErr == nil && (o.strict == StrictOff || results[0].Digest == results[1].Digest) {
		progress.close()
		res.Rebuild = results[1]
		res.Variations = variations(res.Build, res.Rebuild, req, sreq, o)
		if o.strict != StrictOff {
			res.Strict = results[1]
			res.Variations = append(res.Variations, pinnedVariations(res.Build, res.Strict)...)
		}
		if res.Build.Digest == res.Rebuild.Digest {
			return res, nil
		}
		return res, diffError(ctx, res.Build, res.Rebuild, Deciding, req, sreq)
	}

	// The strict rebuild differs, or a step failed in it. The rebuild
	// without the pinned variations says whether they alone made the
	// difference.
	res.Strict = results[1]
	rreq.Progress = progress.stream(prefix("rebuild"))
	d, err := rebuild.Build(ctx, rreq)
	progress.close()
	if err != nil {
		return nil, fmt.Errorf("rebuild failed: %w", err)
	}
	res.Rebuild = d
	res.Variations = variations(res.Build, d, req, rreq, o)
	if res.Strict != nil {
		res.Variations = append(res.Variations, pinnedVariations(res.Build, res.Strict)...)
	}
	if d.Digest != res.Build.Digest {
		return res, diffError(ctx, res.Build, d, Deciding, req, rreq)
	}
	if strictErr != nil {
		res.Variations = append(res.Variations, Variation{Name: "umask", Class: Pinned, Build: BuildKitUmask, Rebuild: StrictUmask},
			Variation{Name: "tz", Class: Pinned, Build: BuildKitTZ, Rebuild: StrictTZ})
		res.Warnings = []Warning{{Variation: "umask or tz", Message: fmt.Sprintf(
			"a step failed in the strict rebuild (%v) but not in the rebuild: it %s", strictErr, dependsOn("umask or tz"))}}
		if o.strict == StrictFail {
			return res, &StrictFailure{Build: res.Build, Err: strictErr}
		}
		return res, nil
	}
	report, cerr := compareLayouts(ctx, res.Build, res.Strict, hints(res.Build, res.Strict, req, sreq))
	res.StrictReport = report
	res.Warnings = Warnings(report, cerr)
	if o.strict == StrictFail {
		return res, &DiffError{Build: res.Build, Rebuild: res.Strict, Report: report, Class: Pinned}
	}
	return res, nil
}

func prefix(name string) string {
	if name == "strict rebuild" {
		return "[strict] "
	}
	return "[" + name + "] "
}

// rebuildRequest is req as a rebuild runs it: the request-side variations
// and its own layout.
func (o *options) rebuildRequest(req builder.Request, suffix, layout string) builder.Request {
	r := req
	r.Hostname = o.hostname
	r.Ulimit = o.ulimit
	switch {
	case layout != "":
		r.OCILayout = layout
	case req.OCILayout != "":
		r.OCILayout = req.OCILayout + suffix
	}
	return r
}

// pair builds a on build and b on second, second after delay. The first to
// fail stops the other; its error is the one returned. With tolerate, a
// step failing on second (not its daemon) stops nothing: it is returned as
// secondErr, and the build goes on.
func pair(ctx context.Context, build builder.Builder, a builder.Request, second builder.Builder, b builder.Request, name string, delay time.Duration, tolerate bool) (results [2]*builder.Result, secondErr, err error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
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
			switch {
			case errors.Is(context.Cause(ctx), errOther):
			case i == 1 && tolerate && errors.Is(err, builder.ErrBuildFailed) && !errors.Is(err, isolation.ErrDaemonFailed) && ctx.Err() == nil:
				secondErr = err
			default:
				fail(name, err)
			}
			return
		}
		results[i] = res
	}
	wg.Add(2)
	go run(0, build, a, "build", 0)
	go run(1, second, b, name, delay)
	wg.Wait()
	if firstErr != nil {
		return results, nil, firstErr
	}
	if err := ctx.Err(); err != nil || results[0] == nil || (results[1] == nil && secondErr == nil) {
		return results, nil, fmt.Errorf("verified build interrupted: %w", context.Cause(ctx))
	}
	return results, secondErr, nil
}

// errOther marks the build that was stopped because the other one failed.
var errOther = errors.New("stopped because the other build failed")

func diffError(ctx context.Context, a, b *builder.Result, class Class, ra, rb builder.Request) error {
	diffErr := &DiffError{Build: a, Rebuild: b, Class: class}
	report, err := compareLayouts(ctx, a, b, hints(a, b, ra, rb))
	if err != nil {
		return fmt.Errorf("%w (and comparing them failed: %v)", diffErr, err)
	}
	diffErr.Report = report
	return diffErr
}

func compareLayouts(ctx context.Context, a, b *builder.Result, hints []imagediff.Hint) (*imagediff.Report, error) {
	ia, err := imagediff.Load(ctx, a.OCILayout+"@"+a.Digest)
	if err != nil {
		return nil, err
	}
	ib, err := imagediff.Load(ctx, b.OCILayout+"@"+b.Digest)
	if err != nil {
		return nil, err
	}
	return imagediff.Compare(ctx, ia, ib, imagediff.WithHints(hints...))
}

// hints tell the diff which settings the two builds' steps saw differently,
// so that a CPU count or hostname in a file is named as such.
func hints(a, b *builder.Result, ra, rb builder.Request) []imagediff.Hint {
	var out []imagediff.Hint
	if ca, cb := cpuCount(a.Builder), cpuCount(b.Builder); ca > 0 && cb > 0 && ca != cb {
		out = append(out, imagediff.Hint{Cause: "cpuset", A: strconv.Itoa(ca), B: strconv.Itoa(cb),
			Text: fmt.Sprintf("the number of CPUs the step saw (%s against %s)", cpus(a.Builder), cpus(b.Builder))})
	}
	if ha, hb := or(ra.Hostname, defaultHostname), or(rb.Hostname, defaultHostname); ha != hb {
		out = append(out, imagediff.Hint{Cause: "hostname", A: ha, B: hb, Text: "the hostname the step saw"})
	}
	return out
}

// defaultHostname is what BuildKit names a RUN step's host.
const defaultHostname = "buildkitsandbox"

// cpuCount is how many CPUs a daemon's steps see; 0 when unknown.
func cpuCount(i isolation.Info) int {
	if i.Remote {
		return 0
	}
	if i.CPUSet == "" {
		return runtime.NumCPU()
	}
	n := 0
	for _, part := range strings.Split(i.CPUSet, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		x, err := strconv.Atoi(lo)
		if err != nil {
			return 0
		}
		y := x
		if isRange {
			if y, err = strconv.Atoi(hi); err != nil || y < x {
				return 0
			}
		}
		n += y - x + 1
	}
	return n
}

// Warnings turns r, what differs between an image and its strict rebuild
// when a rebuild without the pinned variations reproduced it, into one
// warning per file and variation. A nil r (cmpErr says why it is missing)
// gives one warning without a file.
func Warnings(r *imagediff.Report, cmpErr error) []Warning {
	const both = "umask or tz"
	if r == nil {
		msg := "the image differs under the pinned variations"
		if cmpErr != nil {
			msg += fmt.Sprintf(" (comparing the images failed: %v)", cmpErr)
		}
		return []Warning{{Variation: both, Message: msg + "; " + pinnedMessage(both)}}
	}
	var out []Warning
	for _, l := range r.Layers {
		for _, f := range l.Files {
			covered := map[string]bool{}
			for _, why := range f.Why {
				cause := why.Cause
				switch cause {
				case imagediff.CauseUmask, imagediff.CauseTimeZone:
				case imagediff.CauseClock:
					// The deciding rebuild ran at another time and matched:
					// a time of day that changes is the time zone's.
					cause = imagediff.CauseTimeZone
				default:
					continue
				}
				covered[why.Field] = true
				if why.Field == imagediff.FieldContent {
					covered[imagediff.FieldSize] = true
				}
				out = append(out, Warning{Path: f.Path, Variation: cause, Message: why.Field + " " + dependsOn(cause)})
			}
			var rest []string
			for _, fc := range f.Fields {
				if !covered[fc.Name] {
					rest = append(rest, fc.Name)
				}
			}
			switch {
			case f.Kind == imagediff.KindAdded:
				out = append(out, Warning{Path: f.Path, Variation: both, Message: "only in the strict rebuild; it " + dependsOn(both)})
			case f.Kind == imagediff.KindRemoved:
				out = append(out, Warning{Path: f.Path, Variation: both, Message: "missing from the strict rebuild; it " + dependsOn(both)})
			case len(rest) > 0:
				out = append(out, Warning{Path: f.Path, Variation: both, Message: strings.Join(rest, ", ") + " " + dependsOn(both)})
			}
		}
	}
	if len(out) == 0 {
		out = append(out, Warning{Variation: both, Message: "the image's manifest or config differs under the pinned variations; " + pinnedMessage(both)})
	}
	return out
}

func dependsOn(cause string) string {
	switch cause {
	case imagediff.CauseUmask:
		return "depends on the umask; " + pinnedMessage(cause)
	case imagediff.CauseTimeZone:
		return "depends on the time zone; " + pinnedMessage(cause)
	}
	return "depends on the umask or the time zone; " + pinnedMessage(cause)
}

func pinnedMessage(cause string) string {
	switch cause {
	case imagediff.CauseUmask:
		return "BuildKit pins " + BuildKitUmask + ", so it reproduces on BuildKit builders"
	case imagediff.CauseTimeZone:
		return "BuildKit pins " + BuildKitTZ + ", so it reproduces on BuildKit builders"
	}
	return "BuildKit pins umask " + BuildKitUmask + " and " + BuildKitTZ + ", so it reproduces on BuildKit builders"
}

// variations lists the deciding variations between two builds.
func variations(a, b *builder.Result, ra, rb builder.Request, o *options) []Variation {
	v := []Variation{{Name: "start offset", Class: Deciding, Build: "0s", Rebuild: o.offset.String()}}
	add := func(name, x, y string) {
		if x != y {
			v = append(v, Variation{Name: name, Class: ClassOf(name), Build: x, Rebuild: y})
		}
	}
	add("hostname", or(ra.Hostname, defaultHostname), rb.Hostname)
	add("ulimit", or(ra.Ulimit, "daemon default"), rb.Ulimit)
	add("snapshotter", a.Builder.Snapshotter, b.Builder.Snapshotter)
	if a.Builder.RootFS != "" && b.Builder.RootFS != "" {
		add("file system", a.Builder.RootFS, b.Builder.RootFS)
	}
	add("cpus", cpus(a.Builder), cpus(b.Builder))
	add("daemon", a.Builder.Address, b.Builder.Address)
	add("state", or(a.Builder.StateDir, "remote"), or(b.Builder.StateDir, "remote"))
	if a.Builder.Kernel != "" && b.Builder.Kernel != "" {
		add("kernel", a.Builder.Kernel, b.Builder.Kernel)
	}
	return v
}

// pinnedVariations lists the pinned variations between the build and the
// strict rebuild.
func pinnedVariations(a, s *builder.Result) []Variation {
	var v []Variation
	add := func(name, x, y string) {
		if x != y {
			v = append(v, Variation{Name: name, Class: Pinned, Build: x, Rebuild: y})
		}
	}
	add("umask", or(a.Builder.Umask, BuildKitUmask), or(s.Builder.Umask, BuildKitUmask))
	add("tz", or(a.Builder.TZ, BuildKitTZ), or(s.Builder.TZ, BuildKitTZ))
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

// Forward returns a channel whose status goes on to out, its steps
// renamed with prefix ("[strict] ") so that a display keeps them apart
// from another build's of the same graph. Closing the channel does not
// close out; wait returns once everything sent has been passed on. A nil
// out gives a nil channel.
func Forward(out chan<- *client.SolveStatus, prefix string) (ch chan *client.SolveStatus, wait func()) {
	if out == nil {
		return nil, func() {}
	}
	ch = make(chan *client.SolveStatus)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for s := range ch {
			out <- relabel(s, prefix)
		}
	}()
	return ch, func() { <-done }
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
