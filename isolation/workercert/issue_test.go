package workercert_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/twinforge/twinforge/isolation/workercert"
)

// A request IssueRequest.Issue refuses is a usage error to the CLI: it
// wraps ErrInvalidRequest with the message `twinforge workers certs`
// prints, and writes nothing, not even the CA.
func TestIssueRequestErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		r    workercert.IssueRequest
		want string
	}{
		{"nothing to issue", workercert.IssueRequest{Pool: "builds"}, "give at least one --worker or --client"},
		{"worker without hosts", workercert.IssueRequest{Pool: "builds", Workers: []string{"a"}, Clients: []string{"ci"}}, `--worker "a": use NAME=HOST[,HOST...]`},
		{"worker without a name", workercert.IssueRequest{Pool: "builds", Workers: []string{"=a.example"}}, `--worker "=a.example": use NAME=HOST[,HOST...]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.r.Dir = filepath.Join(t.TempDir(), "certs")
			_, err := tc.r.Issue()
			if !errors.Is(err, workercert.ErrInvalidRequest) || err.Error() != tc.want {
				t.Fatalf("err = %v, want %q wrapping ErrInvalidRequest", err, tc.want)
			}
			if _, err := os.Stat(tc.r.Dir); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("%s was written: %v", tc.r.Dir, err)
			}
		})
	}
}

// A CA of another pool is a failure, not a usage error: the request is
// right, the directory is not the pool's.
func TestIssueRequest(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "certs")
	f, err := workercert.IssueRequest{Dir: dir, Pool: "builds", Workers: []string{"a=a.example"}, Clients: []string{"ci"}}.Issue()
	if err != nil {
		t.Fatal(err)
	}
	if !f.NewCA || f.Certs["a"] == "" || f.Certs["ci"] == "" {
		t.Errorf("Issue = %+v", f)
	}
	_, err = workercert.IssueRequest{Dir: dir, Pool: "other", Clients: []string{"ci"}}.Issue()
	if err == nil || errors.Is(err, workercert.ErrInvalidRequest) {
		t.Errorf("another pool's CA: err = %v, want a failure", err)
	}
}
