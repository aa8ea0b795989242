package release

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/twinforge/twinforge/distribute"
)

func TestReaderSettingsConfig(t *testing.T) {
	root := filepath.Join(t.TempDir(), "root.json")
	if err := os.WriteFile(root, []byte(`{"signed":{}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		s      ReaderSettings
		wantNl bool
		err    string
	}{
		{"no index", ReaderSettings{}, true, ""},
		{"root without repo", ReaderSettings{RootFile: root}, false, "--release-root and --release-state go with --release-repo"},
		{"state without repo", ReaderSettings{StateDir: t.TempDir()}, false, "--release-root and --release-state go with --release-repo"},
		{"unreadable root", ReaderSettings{URL: "https://x", RootFile: "/does/not/exist"}, false, "--release-root: open /does/not/exist"},
		{"index", ReaderSettings{URL: "https://x", RootFile: root, StateDir: "/s"}, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := tc.s.Config(nil)
			if tc.err != "" {
				if err == nil || !errors.Is(err, ErrInvalidSetting) || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("Config() error = %v; want ErrInvalidSetting with %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if (cfg == nil) != tc.wantNl {
				t.Fatalf("Config() = %v; want nil: %v", cfg, tc.wantNl)
			}
			if cfg != nil && (cfg.URL != "https://x" || cfg.StateDir != "/s" || string(cfg.InitialRoot) != `{"signed":{}}`) {
				t.Errorf("Config() = %+v", cfg)
			}
		})
	}
}

func TestReplicationRefusesBadInput(t *testing.T) {
	const src = "reg.example/a@sha256:0000000000000000000000000000000000000000000000000000000000000000"
	for _, tc := range []struct {
		name    string
		r       Replication
		err     string
		wantErr error
	}{
		{"bad source", Replication{Source: "bad!", Destinations: []string{"b"}, Jobs: 1}, `SRC "bad!"`, ErrInvalidSetting},
		{"source by tag", Replication{Source: "reg.example/a:1", Destinations: []string{"b"}, Jobs: 1}, "SRC reg.example/a:1: a digest reference", distribute.ErrDigestRequired},
		{"destination with tag", Replication{Source: src, Destinations: []string{"b:1"}, Jobs: 1}, `DEST "b:1": give a repository without tag or digest`, ErrInvalidSetting},
		{"no jobs", Replication{Source: src, Destinations: []string{"b"}}, "--jobs 0: need at least 1", ErrInvalidSetting},
		{"destination twice", Replication{Source: src, Destinations: []string{"m.example/b", "m.example/b"}, Jobs: 2}, "DEST m.example/b is given twice", ErrInvalidSetting},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep, err := tc.r.Run(context.Background())
			if rep != nil || !errors.Is(err, tc.wantErr) || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("Run() = %v, %v; want nil and %v with %q", rep, err, tc.wantErr, tc.err)
			}
		})
	}
}

func TestSettingErrorsCarryTheirClass(t *testing.T) {
	_, err := LoadKeys("key", []string{"/does/not/exist"})
	if !errors.Is(err, ErrInvalidSetting) || !errors.Is(err, os.ErrNotExist) || !strings.HasPrefix(err.Error(), "--key: ") {
		t.Fatalf("LoadKeys error = %v; want --key: ... wrapping ErrInvalidSetting and os.ErrNotExist", err)
	}
}
