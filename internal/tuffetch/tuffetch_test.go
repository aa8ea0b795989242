package tuffetch

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

func TestDownloadFile(t *testing.T) {
	var agent string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		agent = r.UserAgent()
		if r.URL.Path == "/missing" {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte("0123456789"))
	}))
	defer srv.Close()
	f := &HTTP{Ctx: context.Background(), Client: srv.Client()}
	if got, err := f.DownloadFile(srv.URL+"/file", 10, 0); err != nil || string(got) != "0123456789" || agent != "twinforge" {
		t.Fatalf("download = %q, %v (user agent %q)", got, err, agent)
	}
	if _, err := f.DownloadFile(srv.URL+"/file", 9, 0); !errors.As(err, new(*metadata.ErrDownloadLengthMismatch)) {
		t.Errorf("a file over the limit: %v, want a length mismatch", err)
	}
	var httpErr *metadata.ErrDownloadHTTP
	if _, err := f.DownloadFile(srv.URL+"/missing", 10, 0); !errors.As(err, &httpErr) || httpErr.StatusCode != http.StatusNotFound {
		t.Errorf("a missing file: %v, want go-tuf's HTTP error with 404", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := (&HTTP{Ctx: ctx, Client: srv.Client()}).DownloadFile(srv.URL+"/file", 10, 0); !errors.Is(err, context.Canceled) {
		t.Errorf("a cancelled refresh: %v", err)
	}
}
