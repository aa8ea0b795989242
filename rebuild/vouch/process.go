package vouch

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/sigstore/sigstore-go/pkg/bundle"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/twinforge/twinforge/builder"
	"github.com/twinforge/twinforge/isolation"
)

// Options start a rebuild process.
type Options struct {
	// Program is the twinforge program to run; it is run as
	// `PROGRAM rebuilder`. The default is this program.
	Program string
	// Stderr receives the process's log. The default discards it.
	Stderr io.Writer
}

// Process is a running rebuild process: the rebuild's builder.Builder,
// and the rebuilder that signs its own verdict.
type Process struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *bufio.Scanner

	// mu makes requests one at a time, as the process serves them.
	mu     sync.Mutex
	exited chan struct{}
	err    error
	closed bool
}

var _ builder.Builder = (*Process)(nil)

// envAllowed are the variables of this environment the process gets:
// what finding programs and a home need, never a token or a password.
var envAllowed = []string{"PATH", "HOME", "TMPDIR", "LANG", "TZ"}

// Start runs the rebuild process with cfg. It checks what it can before
// the process starts: signing credentials of the rebuilder's own that
// exist, and a worker to rebuild on. Close stops it.
func Start(ctx context.Context, cfg Config, o Options) (*Process, error) {
	if err := cfg.Signer.validate(); err != nil {
		return nil, err
	}
	for _, f := range []string{cfg.Signer.KeyPath, cfg.Signer.KeyPasswordFile, cfg.Signer.IDTokenFile, cfg.TrustedRoot} {
		if f == "" {
			continue
		}
		if _, err := os.Stat(f); err != nil {
			return nil, fmt.Errorf("rebuilder: %w", err)
		}
	}
	if cfg.ContextDir == "" || cfg.LockPath == "" {
		return nil, errors.New("rebuilder: no build context or lock")
	}
	for _, p := range []*string{&cfg.ContextDir, &cfg.LockPath, &cfg.StateDir} {
		if *p != "" {
			abs, err := filepath.Abs(*p)
			if err != nil {
				return nil, err
			}
			*p = abs
		}
	}
	if cfg.Worker.Address == "" && cfg.Worker.Pool == nil {
		return nil, errors.New("rebuilder: no worker to rebuild on: the rebuild that vouches runs on a worker of its own")
	}
	program := o.Program
	if program == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("rebuilder: finding this program: %w", err)
		}
		program = exe
	}
	cmd := exec.Command(program, "rebuilder")
	cmd.Env = []string{}
	for _, k := range envAllowed {
		if v, ok := os.LookupEnv(k); ok {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
	}
	cmd.Stderr = o.Stderr
	if cmd.Stderr == nil {
		cmd.Stderr = io.Discard
	}
	// Its own process group keeps a terminal's Ctrl-C to twinforge, which
	// stops it; the parent-death signal stops it if twinforge is killed.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting the rebuild process: %w", err)
	}
	p := &Process{cmd: cmd, stdin: stdin, out: bufio.NewScanner(stdout), exited: make(chan struct{})}
	p.out.Buffer(make([]byte, 64*1024), 64*1024*1024)
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
	if err := p.send(message{Config: &cfg}); err != nil {
		_ = p.Close()
		return nil, err
	}
	m, err := p.receive(ctx)
	switch {
	case err != nil:
		_ = p.Close()
		return nil, err
	case m.Error != nil:
		_ = p.Close()
		return nil, fromWire(m.Error)
	case !m.Ready:
		_ = p.Close()
		return nil, errors.New("the rebuild process did not start as expected")
	}
	return p, nil
}

func (p *Process) send(m message) error {
	data, err := json.Marshal(m)
	if err != nil {
		return err
	}
	if _, err := p.stdin.Write(append(data, '\n')); err != nil {
		return fmt.Errorf("talking to the rebuild process: %w%s", err, p.exitStatus())
	}
	return nil
}

// receive reads the next message; a cancelled ctx stops the process, as
// Ctrl-C stops a build.
func (p *Process) receive(ctx context.Context) (*message, error) {
	type read struct {
		m   *message
		err error
	}
	ch := make(chan read, 1)
	go func() {
		if !p.out.Scan() {
			err := p.out.Err()
			if err == nil {
				err = io.ErrUnexpectedEOF
			}
			ch <- read{err: fmt.Errorf("%w: the rebuild process ended: %v%s", isolation.ErrDaemonFailed, err, p.exitStatus())}
			return
		}
		var m message
		if err := json.Unmarshal(p.out.Bytes(), &m); err != nil {
			ch <- read{err: fmt.Errorf("the rebuild process sent %q: %w", p.out.Text(), err)}
			return
		}
		ch <- read{m: &m}
	}()
	select {
	case r := <-ch:
		return r.m, r.err
	case <-ctx.Done():
		_ = p.terminate()
		<-ch
		return nil, fmt.Errorf("rebuild interrupted: %w", ctx.Err())
	}
}

func (p *Process) exitStatus() string {
	select {
	case <-p.exited:
		return fmt.Sprintf(" (it exited: %v)", p.err)
	case <-time.After(200 * time.Millisecond):
		return ""
	}
}

// Build rebuilds in the process: from the lock of the context it was
// started for, with req's layout, image name, hostname and ulimit; the
// rest of req is the parent's and not used. Build closes
// req.Progress, as builder.Builder does.
func (p *Process) Build(ctx context.Context, req builder.Request) (*builder.Result, error) {
	progress := req.Progress
	defer func() {
		if progress != nil {
			close(progress)
		}
	}()
	p.mu.Lock()
	defer p.mu.Unlock()
	abs := func(s string) string {
		if s == "" {
			return ""
		}
		a, err := filepath.Abs(s)
		if err != nil {
			return s
		}
		return a
	}
	if err := p.send(message{Build: &buildRequest{
		OCILayout: abs(req.OCILayout), ImageName: req.ImageName, Hostname: req.Hostname, Ulimit: req.Ulimit,
	}}); err != nil {
		return nil, err
	}
	for {
		m, err := p.receive(ctx)
		switch {
		case err != nil:
			return nil, err
		case m.Status != nil:
			if progress != nil {
				progress <- m.Status
			}
		case m.Error != nil:
			return nil, fromWire(m.Error)
		case m.Result != nil:
			return m.Result, nil
		}
	}
}

// Builder is the identity that signed the provenance, for the process to
// verify it with: a key (PEM), or a certificate's issuer and subject.
type Builder struct {
	PublicKeyPEM    string
	Issuer, Subject string
}

// VouchRequest is what Vouch hands the process.
type VouchRequest struct {
	// Provenance and Image are the builder's bundles of the digest the
	// process rebuilt.
	Provenance, Image *bundle.Bundle
	// Builder verifies them.
	Builder Builder
	// BuildWorker is the daemon the build ran on: the process refuses to
	// vouch when its own worker is not known to be another machine.
	BuildWorker isolation.Info
}

// Vouch has the process verify the builder's provenance of the digest it
// rebuilt and sign a rebuild verdict with the rebuilder's identity; it
// returns the verdict bundle. A refusal wraps ErrNotVouched.
func (p *Process) Vouch(ctx context.Context, req VouchRequest) (*bundle.Bundle, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if req.Provenance == nil {
		return nil, fmt.Errorf("%w: no provenance", ErrNotVouched)
	}
	vr := &vouchRequest{BuilderKey: req.Builder.PublicKeyPEM, BuilderIssuer: req.Builder.Issuer, BuilderSubject: req.Builder.Subject, BuildWorker: req.BuildWorker}
	var err error
	if vr.Provenance, err = protojson.Marshal(req.Provenance.Bundle); err != nil {
		return nil, err
	}
	if req.Image != nil {
		if vr.Image, err = protojson.Marshal(req.Image.Bundle); err != nil {
			return nil, err
		}
	}
	if err := p.send(message{Vouch: vr}); err != nil {
		return nil, err
	}
	for {
		m, err := p.receive(ctx)
		switch {
		case err != nil:
			return nil, err
		case m.Error != nil:
			return nil, fromWire(m.Error)
		case m.Verdict != nil:
			b := &bundle.Bundle{}
			if err := b.UnmarshalJSON(m.Verdict); err != nil {
				return nil, fmt.Errorf("the rebuild process's verdict: %w", err)
			}
			return b, nil
		}
	}
}

// Close ends the process: its stdin closes, it exits, and after a while
// it is stopped. Close is safe to call more than once.
func (p *Process) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	p.mu.Unlock()
	_ = p.stdin.Close()
	select {
	case <-p.exited:
	case <-time.After(30 * time.Second):
		_ = p.terminate()
		<-p.exited
	}
	return nil
}

func (p *Process) terminate() error {
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(15 * time.Second):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	}
	return nil
}
