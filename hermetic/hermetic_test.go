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
