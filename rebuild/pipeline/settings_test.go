package pipeline

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/twinforge/twinforge/rebuild"
)

func TestCheckSettings(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	ok := func() Request {
		return Request{ContextDir: dir, RebuildOffset: time.Second, StrictVariations: rebuild.StrictOff,
			Daemons: rebuild.Daemons{RebuildSnapshotter: "native"}}
	}
	for _, tc := range []struct {
		name   string
		change func(*Request)
		err    string
	}{
		{"ok", func(*Request) {}, ""},
		{"snapshotter", func(r *Request) { r.Daemons.RebuildSnapshotter = "zfs" }, `--rebuild-snapshotter "zfs": use one of native, overlayfs`},
		{"offset", func(r *Request) { r.RebuildOffset = time.Millisecond }, "--rebuild-offset 1ms: the rebuild must start at least 1s later"},
		{"strict without rebuild", func(r *Request) { r.NoRebuild, r.StrictVariations = true, rebuild.StrictWarn }, "--strict-variations needs the rebuild: drop --no-rebuild"},
		{"rebuilder without rebuild", func(r *Request) { r.NoRebuild, r.Daemons.Workers = true, &rebuild.Workers{Rebuild: "tcp://b:1"} }, "--rebuilder needs the rebuild: drop --no-rebuild"},
		{"not a directory", func(r *Request) { r.ContextDir = file }, "build context " + file + " is not a directory: give the directory holding the Dockerfile"},
		{"missing", func(r *Request) { r.ContextDir = filepath.Join(dir, "none") }, "build context " + filepath.Join(dir, "none") + ": no such file or directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := ok()
			tc.change(&r)
			err := r.CheckSettings()
			if (err == nil) != (tc.err == "") || err != nil && err.Error() != tc.err {
				t.Errorf("CheckSettings() = %v, want %q", err, tc.err)
			}
		})
	}
}

func TestSetDefaults(t *testing.T) {
	r := Request{ContextDir: filepath.Join("examples", "hello")}
	if err := r.SetDefaults(); err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join("examples", "hello", "twinforge.lock"); r.LockPath != want {
		t.Errorf("LockPath = %q, want %q", r.LockPath, want)
	}
	if want := filepath.Join("out", "hello"); r.OCILayout != want {
		t.Errorf("OCILayout = %q, want %q", r.OCILayout, want)
	}
}
