package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/twinforge/twinforge/admission"
	"github.com/twinforge/twinforge/distribute"
	"github.com/twinforge/twinforge/internal/regtest"
	"github.com/twinforge/twinforge/internal/sigstack"
	"github.com/twinforge/twinforge/internal/testenv"
)

// Fault injection against the real components, through the CLI: a
// Sigstore service down at signing, buildkitd killed mid-build, the state
// directory's disk full. Each run fails with an error that names what
// failed, moves no tag, leaves no partial layout, and the next run in the
// same state directory works; an image left unsigned is never admitted.

// stackFlags are the signing flags for a stack.
func stackFlags(st *sigstack.Stack) []string {
	return []string{"--fulcio-url", st.FulcioURL(), "--tsa-url", st.TimestampURL(),
		"--rekor-url", st.RekorURL(), "--trusted-root", filepath.Join(st.Dir(), "trusted_root.json")}
}

func startStack(t *testing.T) *sigstack.Stack {
	t.Helper()
	st, err := sigstack.Start(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// signedBuildArgs builds ctx, signs keyless through st and pushes to ref.
func signedBuildArgs(st *sigstack.Stack, token, out, ref, ctx string) []string {
	return append(append([]string{"build", "--no-rebuild", "--progress", "quiet", "--output", "json", "--oci-layout", out,
		"--sign", "keyless", "--identity-token", token, "--push", ref, "--insecure"}, stackFlags(st)...), ctx)
}

// builtDigest is the digest of the one image of an OCI layout, "" when
// there is no layout.
func builtDigest(t *testing.T, layout string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(layout, "index.json"))
	if errors.Is(err, os.ErrNotExist) {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	var idx struct{ Manifests []struct{ Digest string } }
	if err := json.Unmarshal(data, &idx); err != nil || len(idx.Manifests) != 1 {
		t.Fatalf("%s holds a partial layout: %v\n%s", layout, err, data)
	}
	return idx.Manifests[0].Digest
}

// admits asks an admission webhook, reading the real registry with the
// stack's trusted root and policy, whether a pod running image is
// admitted, and returns its answer's message.
func admits(t *testing.T, policy, trustedRoot, image string) (bool, string) {
	t.Helper()
	wh, err := admission.New(admission.Source{PolicyFile: policy, TrustedRootFile: trustedRoot},
		admission.WithPollInterval(0), admission.WithInsecureLoopbackUnsafe(), admission.WithDenialReasonsUnsafe(),
		admission.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		t.Fatal(err)
	}
	defer wh.Close()
	pod, _ := json.Marshal(map[string]any{"apiVersion": "v1", "kind": "Pod", "metadata": map[string]string{"name": "app"},
		"spec": map[string]any{"containers": []any{map[string]string{"name": "app", "image": image}}}})
	body, _ := json.Marshal(map[string]any{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": map[string]any{
		"uid": "fault-test", "kind": map[string]string{"version": "v1", "kind": "Pod"}, "namespace": "default", "name": "app",
		"operation": "CREATE", "object": json.RawMessage(pod)}})
	req := httptest.NewRequest(http.MethodPost, admission.PathValidate, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	wh.ServeHTTP(rec, req)
	var review struct {
		Response struct {
			Allowed bool
			Status  struct{ Message string } `json:"status"`
		}
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &review); err != nil {
		t.Fatalf("webhook answered %d: %v\n%s", rec.Code, err, rec.Body)
	}
	return review.Response.Allowed, review.Response.Status.Message
}

// TestSigstoreDownAtSigning stops Rekor, the timestamp authority and
// Fulcio in turn while a build signs and pushes a new version of a
// released image. Each run fails naming the service, writes no bundle,
// pushes nothing (the release tag keeps its signed digest, the new digest
// is not in the registry), and the unsigned build output, pushed by hand,
// is denied by the admission webhook. With Rekor back, the next run
// releases the new version.
func TestSigstoreDownAtSigning(t *testing.T) {
	testenv.NeedDaemon(t)
	tally := regtest.NewFaultTally(t)
	reg := regtest.StartDistribution(t)
	st := startStack(t)
	token := func(st *sigstack.Stack) string {
		tok, err := st.IDToken(context.Background(), sigstack.Claims{Subject: "builder@twinforge.test", Email: "builder@twinforge.test"})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	policy := filepath.Join(t.TempDir(), "policy.yaml")
	write(t, policy, "apiVersion: twinforge.dev/v2\nkind: Policy\nidentities:\n  - issuer: "+st.OIDCIssuer()+"\n    subject: builder@twinforge.test\n")
	trustedRoot := filepath.Join(st.Dir(), "trusted_root.json")

	c := newCLI(t)
	ctx := c.context("files-small")
	release := func(content string) {
		t.Helper()
		write(t, filepath.Join(ctx, "hello.txt"), content)
		c.lock(ctx)
	}
	ref := reg.Host + "/team/app:1.0"
	release("release 1\n")
	r := c.must(signedBuildArgs(st, token(st), filepath.Join(t.TempDir(), "v1"), ref, ctx)...)
	var first struct{ Digest string }
	if err := json.Unmarshal([]byte(r.stdout), &first); err != nil {
		t.Fatal(err)
	}
	if ok, msg := admits(t, policy, trustedRoot, ref); !ok {
		t.Fatalf("the signed release is denied: %s", msg)
	}

	// Fulcio and the TSA cannot come back as themselves: each is stopped
	// in a stack of its own, whose other services stay up.
	fulcioStack, tsaStack := startStack(t), startStack(t)
	for i, tt := range []struct {
		service string
		stack   *sigstack.Stack
		want    []string // in the error
	}{
		{sigstack.NameRekor, st, []string{"Rekor", st.RekorURL()}},
		{sigstack.NameTSA, tsaStack, []string{"timestamp", tsaStack.TimestampURL()}},
		{sigstack.NameFulcio, fulcioStack, []string{"Fulcio", fulcioStack.FulcioURL()}},
	} {
		t.Run(tt.service+" down", func(t *testing.T) {
			tok := token(tt.stack)
			if err := tt.stack.Stop(tt.service); err != nil {
				t.Fatal(err)
			}
			tally.Record(t, 1)
			release(fmt.Sprintf("release 2, attempt %d\n", i))
			out := filepath.Join(t.TempDir(), "v2")
			r := c.run(signedBuildArgs(tt.stack, tok, out, ref, ctx)...)
			if r.code != exitFailure {
				t.Fatalf("exit %d, want 1\n%s", r.code, r.stderr)
			}
			t.Logf("error: %s", lastLine(r.stderr))
			assertContains(t, "stderr", r.stderr, tt.want...)
			if _, err := os.Stat(filepath.Join(out, "attestations")); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("a failed signing wrote bundles: %v", err)
			}
			if got := craneDigest(t, ref); got != first.Digest {
				t.Errorf("tag 1.0 moved to %s", got)
			}
			unsigned := builtDigest(t, out)
			if unsigned == "" {
				t.Log("no build output at all: nothing to push by hand")
				return
			}
			if unsigned == first.Digest {
				t.Fatal("the new version has the released digest: the test changes nothing")
			}
			if reg.Exists(t, "team/app", "manifests", unsigned) {
				t.Errorf("the unsigned image %s was pushed", unsigned)
			}
			if v := c.run("verify", "--output", "json", "--policy", policy, "--trusted-root", trustedRoot, out); v.code != exitRefused || !strings.Contains(v.stdout, `"check": "signature"`) {
				t.Errorf("verify of the unsigned layout: exit %d\n%s%s", v.code, v.stdout, v.stderr)
			}
			// Pushed by someone else anyway, it is not admitted.
			img, err := distribute.FromLayout(out)
			if err != nil {
				t.Fatal(err)
			}
			hand, err := name.ParseReference(reg.Host + "/team/app:unsigned-" + tt.service)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := distribute.Push(context.Background(), img, hand, nil, distribute.WithInsecureLoopbackUnsafe()); err != nil {
				t.Fatal(err)
			}
			if ok, msg := admits(t, policy, trustedRoot, hand.String()); ok || !strings.Contains(msg, "not signed") {
				t.Errorf("the unsigned image pushed by hand: admitted %v: %s", ok, msg)
			}
		})
	}

	// Rekor back: the same state directory and context release version 2.
	if err := st.Restart(context.Background(), sigstack.NameRekor); err != nil {
		t.Fatal(err)
	}
	release("release 2\n")
	r = c.must(signedBuildArgs(st, token(st), filepath.Join(t.TempDir(), "v2"), ref, ctx)...)
	var second struct{ Digest string }
	if err := json.Unmarshal([]byte(r.stdout), &second); err != nil {
		t.Fatal(err)
	}
	if got := craneDigest(t, ref); got != second.Digest || got == first.Digest {
		t.Errorf("after Rekor came back, tag 1.0 is %s, want the new %s", got, second.Digest)
	}
	if ok, msg := admits(t, policy, trustedRoot, ref); !ok {
		t.Errorf("the release signed after the outage is denied: %s", msg)
	}
	c.assertClean()
}

func craneDigest(t *testing.T, ref string) string {
	t.Helper()
	cmd := testenv.Binary(t, "crane")
	out, err := execOutput(cmd, "digest", "--insecure", ref)
	if err != nil {
		t.Fatalf("crane digest %s: %v\n%s", ref, err, out)
	}
	return strings.TrimSpace(out)
}

// TestDaemonKilledMidBuild kills a build's buildkitd while a RUN step
// runs: the build fails saying the daemon died, leaves no layout and no
// process, and the next build in the same state directory works.
func TestDaemonKilledMidBuild(t *testing.T) {
	testenv.NeedDaemon(t)
	tally := regtest.NewFaultTally(t)
	for _, which := range []string{"build", "rebuild"} {
		t.Run(which, func(t *testing.T) {
			c := newCLI(t)
			ctx := c.context("sleep")
			c.lock(ctx)
			out := filepath.Join(t.TempDir(), "out")
			cmd := c.command(t.Context(), "build", "--progress", "plain", "--oci-layout", out, ctx)
			var stderr syncBuffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			// The step's own output line ("#5 0.104 sleeping"), not its
			// name, from the build and from the rebuild.
			waitFor(t, func() bool { return len(stepOutput.FindAllString(stderr.String(), -1)) >= 2 }, "both builds' step to run")
			pid := daemonPID(t, c.state, which)
			if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			tally.Record(t, 1)
			err := cmd.Wait()
			var exit interface{ ExitCode() int }
			if !errors.As(err, &exit) || exit.ExitCode() != exitFailure {
				t.Fatalf("build with its %s daemon killed: %v, want exit 1\n%s", which, err, stderr.String())
			}
			t.Logf("error: %s", lastLine(stderr.String()))
			assertContains(t, "stderr", stderr.String(), "buildkit daemon failed", which+" daemon exited", "killed")
			if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("a failed build left %s: %v", out, err)
			}
			if tmp, _ := filepath.Glob(filepath.Join(filepath.Dir(out), ".out.tmp-*")); len(tmp) > 0 {
				t.Errorf("temporary layout left: %v", tmp)
			}
			waitFor(t, func() bool { return !processUnder(c.state) }, "the other daemon to stop")

			files := c.context("files-small")
			c.lock(files)
			c.must("build", "--progress", "quiet", "--oci-layout", filepath.Join(t.TempDir(), "next"), files)
			c.assertClean()
		})
	}
}

var stepOutput = regexp.MustCompile(`(?m)#\d+ \d+\.\d+ sleeping$`)

// daemonPID finds the buildkitd of a twinforge run by its state directory
// and role ("build" or "rebuild": its daemon directory's name starts with
// it).
func daemonPID(t *testing.T, state, role string) int {
	t.Helper()
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		args := strings.Split(string(b), "\x00")
		if len(args) == 0 || filepath.Base(args[0]) != "buildkitd" {
			continue
		}
		for _, a := range args {
			if strings.HasPrefix(a, filepath.Join(state, "daemons", role+"-")) {
				var pid int
				fmt.Sscanf(filepath.Base(filepath.Dir(p)), "%d", &pid)
				return pid
			}
		}
	}
	t.Fatalf("no %s buildkitd under %s", role, state)
	return 0
}

// TestStateDirFull runs builds whose state directory is on a full
// filesystem (a tmpfs with a size limit, mounted for the test): full when
// the run starts, or filling up while a step writes. The build fails
// saying the disk is full, leaves no layout, and once space is freed the
// next build in the same state directory works and leaves nothing behind.
func TestStateDirFull(t *testing.T) {
	testenv.NeedDaemon(t)
	tally := regtest.NewFaultTally(t)
	for _, tt := range []struct {
		name       string
		leave      int64  // bytes left free
		dockerfile string // of the build that hits the full disk
		flags      []string
	}{
		{"full when the run starts", 0, "FROM example.test/base:1\nCOPY hello.txt /hello.txt\n", nil},
		{"full while a step writes", 24 << 20, "FROM example.test/base:1\nRUN dd if=/dev/zero of=/big bs=1M count=96 && echo wrote\n", nil},
		// The step's 16 MiB fit; the daemon's copy of them into its
		// content store does not.
		{"full while the daemon stores a layer", 24 << 20, "FROM example.test/base:1\nRUN head -c 16777216 /dev/urandom >/big && echo wrote\n", []string{"--no-rebuild"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			// Room for two scopes' caches: a rebuild cache's own file
			// system (isolation.WithOwnFileSystem) takes 65 MiB when it is
			// made, its XFS log alone 64.
			c := &cliRunner{t: t, state: filepath.Join(smallFilesystem(t, 400<<20), "s"), dir: t.TempDir()}
			// A first build fills the state directory as builds do.
			files := c.context("files-small")
			c.lock(files)
			c.must("build", "--progress", "quiet", files)

			filler := filepath.Join(c.state, "filler")
			fill(t, filler, tt.leave)
			tally.Record(t, 1)
			ctx := c.context("files-small")
			write(t, filepath.Join(ctx, "Dockerfile"), tt.dockerfile)
			c.lock(ctx)
			out := filepath.Join(t.TempDir(), "out")
			r := c.run(append(append([]string{"build", "--progress", "plain", "--oci-layout", out}, tt.flags...), ctx)...)
			if r.code != exitFailure {
				t.Fatalf("build on a full disk: exit %d, want 1\n%s", r.code, r.stderr)
			}
			t.Logf("error: %s", lastLine(r.stderr))
			// From the daemon or from the step that hit it (dd says "No
			// space ...").
			assertContains(t, "stderr", strings.ToLower(r.stderr), "no space left on device")
			if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("a failed build left %s: %v", out, err)
			}
			if tmp, _ := filepath.Glob(filepath.Join(filepath.Dir(out), ".out.tmp-*")); len(tmp) > 0 {
				t.Errorf("temporary layout left: %v", tmp)
			}
			waitFor(t, func() bool { return !processUnder(c.state) }, "the daemons to stop")

			if err := os.Remove(filler); err != nil {
				t.Fatal(err)
			}
			if tt.leave > 0 {
				// The step writes more than the filesystem holds: build
				// what fits, in the same state directory.
				write(t, filepath.Join(ctx, "Dockerfile"), "FROM example.test/base:1\nRUN dd if=/dev/zero of=/big bs=1M count=4 && echo wrote\n")
				c.lock(ctx)
			}
			c.must("build", "--progress", "quiet", "--oci-layout", out, ctx)
			if builtDigest(t, out) == "" {
				t.Error("the build after the disk was freed wrote no layout")
			}
			c.assertClean()
		})
	}
}

// smallFilesystem mounts a tmpfs of size bytes on a new directory,
// unmounted and removed at cleanup, and returns the directory. Its name is
// short: daemon sockets live under it.
func smallFilesystem(t *testing.T, size int64) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "tf-full-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(dir) })
	if err = syscall.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%d,mode=0755", size)); err != nil {
		t.Fatalf("mounting a size-limited tmpfs: %v", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			t.Errorf("unmounting %s: %v", dir, err)
			_ = syscall.Unmount(dir, syscall.MNT_DETACH)
		}
	})
	return dir
}

// fill writes zeros to path until the filesystem has at most leave bytes
// free.
func fill(t *testing.T, path string, leave int64) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var fs syscall.Statfs_t
	if err := syscall.Statfs(filepath.Dir(path), &fs); err != nil {
		t.Fatal(err)
	}
	want := int64(fs.Bavail)*fs.Bsize - leave
	chunk := make([]byte, 1<<20)
	for written := int64(0); written < want; {
		n := min(int64(len(chunk)), want-written)
		m, err := f.Write(chunk[:n])
		written += int64(m)
		if errors.Is(err, syscall.ENOSPC) {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// syncBuffer is a buffer a process writes to while the test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func execOutput(bin string, args ...string) (string, error) {
	out, err := exec.Command(bin, args...).CombinedOutput()
	return string(out), err
}

// lastLine is the line of a failed command's stderr that says so
// ("twinforge: error: ..."), or its last line.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	for _, l := range lines {
		if strings.HasPrefix(l, "twinforge: error:") {
			return l
		}
	}
	return lines[len(lines)-1]
}
