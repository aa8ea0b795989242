package sigstack

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// makeTarget builds the binaries this package runs.
const makeTarget = "make sigstore-tools"

// stopGrace is how long a server may take to exit after SIGTERM before it
// is killed.
const stopGrace = 10 * time.Second

// process is one server started by the stack.
type process struct {
	name    string
	bin     string
	args    []string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{} // closed once the process has exited
	err     error         // Wait's result, valid after done
	stopped bool          // stop was called: an exit is expected
}

// findBinary returns dir/name, or name on PATH.
func findBinary(dir, name string) (string, error) {
	p := filepath.Join(dir, name)
	if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
		return p, nil
	}
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("%s not found in %s or on PATH: run `%s`", name, dir, makeTarget)
}

// startProcess runs bin with args, its output appended to dir/name.log.
func startProcess(dir, name, bin string, args ...string) (*process, error) {
	logPath := filepath.Join(dir, name+".log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("opening %s's log: %w", name, err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.Env = append(os.Environ(), "OTEL_TRACES_EXPORTER=none", "OTEL_SDK_DISABLED=true")
	// Own process group, so a terminal's ^C reaches only our parent, which
	// stops the servers in order; killed with the parent if it dies first.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &process{name: name, bin: bin, args: args, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	return p, nil
}

// exited reports whether the process has ended.
func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM, waits stopGrace, then kills. It reports an exit the
// stack did not cause (a crash before stop) and a server that had to be
// killed.
func (p *process) stop() error {
	if p.exited() {
		if p.stopped {
			return nil
		}
		p.stopped = true
		return fmt.Errorf("%s exited on its own (%v)%s", p.name, p.err, p.logTail())
	}
	p.stopped = true
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return nil // a server's exit status after SIGTERM is its own business
	case <-time.After(stopGrace):
	}
	_ = p.cmd.Process.Kill()
	<-p.done
	return fmt.Errorf("%s did not stop within %v of SIGTERM and was killed", p.name, stopGrace)
}

// logTail returns the last lines of the process's log, for error messages.
func (p *process) logTail() string {
	const maxLines = 25
	b, err := os.ReadFile(p.logPath)
	if err != nil || len(bytes.TrimSpace(b)) == 0 {
		return " (log " + p.logPath + " is empty)"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > maxLines {
		lines = lines[len(lines)-maxLines:]
	}
	return "; last lines of " + p.logPath + ":\n\t" + strings.Join(lines, "\n\t")
}

// waitHTTP polls url until it answers 200, the process exits or ctx ends.
// It returns the body of the first 200 answer.
func (p *process) waitHTTP(ctx context.Context, url string) ([]byte, error) {
	client := &http.Client{Timeout: 5 * time.Second}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		body, err := get(ctx, client, url)
		if err == nil {
			return body, nil
		}
		last = err
		select {
		case <-p.done:
			p.stopped = true // reported here, not again by Close
			return nil, fmt.Errorf("%s exited while starting (%v)%s", p.name, p.err, p.logTail())
		case <-ctx.Done():
			return nil, fmt.Errorf("%s not ready at %s (%v): %w%s", p.name, url, last, ctx.Err(), p.logTail())
		case <-tick.C:
		}
	}
}

func get(ctx context.Context, client *http.Client, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return body, nil
}

// freePorts asks the kernel for n distinct free ports on 127.0.0.1. They
// are released before use, so another process could take one in between;
// the server then fails to start and Start reports its log.
func freePorts(n int) ([]string, error) {
	ports := make([]string, 0, n)
	var errs []error
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			errs = append(errs, err)
			break
		}
		defer l.Close() // held until all are picked, so they differ
		ports = append(ports, strconv.Itoa(l.Addr().(*net.TCPAddr).Port))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("finding free ports: %w", err)
	}
	return ports, nil
}
