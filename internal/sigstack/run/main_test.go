package main

import (
	"os/exec"
	"path/filepath"
	"testing"
)

// TestWriteEnvIsSourceable checks that a shell reads back each value
// exactly, quotes included.
func TestWriteEnvIsSourceable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "env")
	values := map[string]string{
		"TWINFORGE_FULCIO_URL": "http://127.0.0.1:1234",
		"TWINFORGE_ODD":        `it's "odd" $HOME \n`,
	}
	var vars []string
	for k, v := range values {
		vars = append(vars, k+"="+v)
	}
	if err := writeEnv(path, vars); err != nil {
		t.Fatal(err)
	}
	for k, want := range values {
		out, err := exec.Command("sh", "-c", `. "$1" && eval "v=\${$2}" && printf %s "$v"`, "sh", path, k).Output()
		if err != nil {
			t.Fatalf("sourcing %s: %v", path, err)
		}
		if string(out) != want {
			t.Errorf("%s = %q after sourcing, want %q", k, out, want)
		}
	}
}
