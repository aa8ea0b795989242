package hermetic

import (
	"errors"
	"strings"
	"testing"
)

func TestCheckHermetic(t *testing.T) {
	tests := []struct {
		name       string
		dockerfile string
		want       string // empty: allowed
	}{
		{"plain", "FROM example.test/base:1\nRUN echo hi\n", ""},
		{"network none", "FROM example.test/base:1\nRUN --network=none echo hi\n", ""},
		{"cache mount", "FROM example.test/base:1\nRUN --mount=type=cache,target=/c echo hi\n", ""},
		{"network host", "FROM example.test/base:1\nRUN --network=host wget http://127.0.0.1/\n", "RUN --network=host (Dockerfile line 2)"},
		{"network default", "FROM example.test/base:1\nRUN --network=default wget http://127.0.0.1/\n", "RUN --network=default"},
		{"insecure", "FROM example.test/base:1\nRUN --security=insecure id\n", "RUN --security=insecure"},
		{"secret", "FROM example.test/base:1\nRUN --mount=type=secret,id=tok cat /run/secrets/tok\n", "type=secret"},
		{"ssh", "FROM example.test/base:1\nRUN --mount=type=ssh ssh-add -l\n", "type=ssh"},
		{"syntax", "# syntax=docker/dockerfile:1\nFROM example.test/base:1\n", "# syntax=docker/dockerfile:1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := AnalyzeDockerfile([]byte(tt.dockerfile), nil, "", "linux/amd64")
			if err != nil {
				t.Fatal(err)
			}
			err = a.CheckHermetic()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrNotHermetic) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want ErrNotHermetic naming %q", err, tt.want)
			}
			l := &Lock{SchemaVersion: SchemaVersion}
			if err := l.Verify(a); !errors.Is(err, ErrNotHermetic) {
				t.Fatalf("Verify = %v, want ErrNotHermetic", err)
			}
		})
	}
}

func TestCheckBuildArgs(t *testing.T) {
	for _, tt := range []struct {
		args map[string]string
		want string // empty: allowed
	}{
		{map[string]string{"VERSION": "1", "GOFLAGS": "-trimpath"}, ""},
		{map[string]string{"BUILDKIT_SYNTAX": "example.test/frontend:1"}, "BUILDKIT_SYNTAX"},
		{map[string]string{"buildkit_syntax": "example.test/frontend:1"}, "buildkit_syntax"},
		{map[string]string{"BUILDKIT_CACHE_MOUNT_NS": "shared"}, "BUILDKIT_CACHE_MOUNT_NS"},
		{map[string]string{"BUILDKIT_MULTI_PLATFORM": "1", "OK": "1"}, "BUILDKIT_MULTI_PLATFORM"},
		{map[string]string{"SOURCE_DATE_EPOCH": "0"}, "SOURCE_DATE_EPOCH"},
	} {
		err := CheckBuildArgs(tt.args)
		if tt.want == "" {
			if err != nil {
				t.Errorf("%v refused: %v", tt.args, err)
			}
			continue
		}
		if !errors.Is(err, ErrNotHermetic) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: err = %v, want ErrNotHermetic naming %s", tt.args, err, tt.want)
		}
	}
	// A lock holding one is refused by Verify, whatever the Dockerfile.
	l := &Lock{BuildArgs: map[string]string{"BUILDKIT_SYNTAX": "example.test/frontend:1"}}
	a, err := AnalyzeDockerfile([]byte("FROM scratch\n"), l.BuildArgs, "", "linux/amd64")
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Verify(a); !errors.Is(err, ErrNotHermetic) || !strings.Contains(err.Error(), "BUILDKIT_SYNTAX") {
		t.Errorf("Verify: %v", err)
	}
}
