package offline

import (
	"archive/tar"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// WorkerPrograms are the host programs a build worker image is made of.
type WorkerPrograms struct {
	// Buildkitd and Runc are the daemon and its OCI runtime; CNILoopback
	// the CNI loopback plugin that gives build containers a network of lo
	// alone.
	Buildkitd, Runc, CNILoopback string
	// Busybox is a static busybox, the image's shell and tools.
	Busybox string
}

// Worker is a build worker image made offline from this machine's
// programs: busybox, buildkitd at /usr/bin/buildkitd, runc at
// /usr/sbin/runc, the CNI loopback plugin in /opt/cni/bin and the shared
// libraries they need, as ldd lists them. Its entrypoint is buildkitd; it
// stands in for BuildKit's own image, which cannot be pulled offline.
func Worker(p WorkerPrograms) (v1.Image, error) {
	entries, err := Busybox(p.Busybox)
	if err != nil {
		return nil, err
	}
	libs := map[string]bool{}
	for dest, src := range map[string]string{
		"usr/bin/buildkitd":    p.Buildkitd,
		"usr/sbin/runc":        p.Runc,
		"opt/cni/bin/loopback": p.CNILoopback,
	} {
		real, err := filepath.EvalSymlinks(src)
		if err != nil {
			return nil, fmt.Errorf("worker image: %w", err)
		}
		entries = append(entries, Entry{Path: dest, Type: tar.TypeReg, Mode: 0o755, Source: real})
		deps, err := sharedLibraries(real)
		if err != nil {
			return nil, err
		}
		for _, l := range deps {
			libs[l] = true
		}
	}
	for l := range libs {
		real, err := filepath.EvalSymlinks(l)
		if err != nil {
			return nil, fmt.Errorf("worker image: %w", err)
		}
		entries = append(entries, Entry{Path: strings.TrimPrefix(l, "/"), Type: tar.TypeReg, Mode: 0o755, Source: real})
	}
	entries = append(entries, Dir("var/lib/buildkit", 0o700), Dir("etc/buildkit", 0o755), Dir("run", 0o755))
	layer, err := Layer(entries, false)
	if err != nil {
		return nil, err
	}
	return Image(v1.Config{
		Env:        []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
		Entrypoint: []string{"/usr/bin/buildkitd"},
	}, v1.Platform{OS: "linux", Architecture: runtime.GOARCH}, layer)
}

// sharedLibraries are the absolute paths ldd names for a program: none
// for a static one.
func sharedLibraries(program string) ([]string, error) {
	out, err := exec.Command("ldd", program).CombinedOutput()
	if err != nil {
		if strings.Contains(string(out), "not a dynamic executable") {
			return nil, nil
		}
		return nil, fmt.Errorf("ldd %s: %v: %s", program, err, out)
	}
	var libs []string
	for _, line := range strings.Split(string(out), "\n") {
		for _, f := range strings.Fields(line) {
			if strings.HasPrefix(f, "/") {
				if _, err := os.Stat(f); err == nil {
					libs = append(libs, f)
				}
			}
		}
	}
	return libs, nil
}
