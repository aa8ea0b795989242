package distribute

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRegistrySettingsOptions(t *testing.T) {
	pem := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(pem, []byte("-----BEGIN CERTIFICATE-----\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		s       RegistrySettings
		options int
		err     string
	}{
		{"none", RegistrySettings{}, 0, ""},
		{"insecure", RegistrySettings{InsecureLoopbackUnsafe: true}, 1, ""},
		{"both", RegistrySettings{InsecureLoopbackUnsafe: true, CACertFile: pem}, 2, ""},
		{"missing CA", RegistrySettings{CACertFile: "/does/not/exist"}, 0, "--ca-cert /does/not/exist: not a readable PEM file"},
		{"CA is a directory", RegistrySettings{CACertFile: t.TempDir()}, 0, "not a readable PEM file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts, err := tc.s.Options()
			if tc.err == "" {
				if err != nil || len(opts) != tc.options {
					t.Fatalf("Options() = %d options, %v; want %d, nil", len(opts), err, tc.options)
				}
				return
			}
			if err == nil || !errors.Is(err, ErrInvalidSetting) || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("Options() error = %v; want one wrapping ErrInvalidSetting with %q", err, tc.err)
			}
			if strings.Contains(err.Error(), ErrInvalidSetting.Error()) {
				t.Errorf("error %q shows the sentinel's text", err)
			}
		})
	}
}
