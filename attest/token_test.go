package attest

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestIDTokenFromEnv(t *testing.T) {
	var gotAuth, gotAudience string
	gh := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotAuth, gotAudience = r.Header.Get("Authorization"), r.URL.Query().Get("audience")
		if r.URL.Query().Get("api-version") != "2.0" {
			http.Error(w, "lost the query", http.StatusBadRequest)
			return
		}
		if gotAuth != "bearer request-token" {
			http.Error(w, "forbidden", http.StatusForbidden)
			return
		}
		w.Write([]byte(`{"count":1,"value":"github-token"}`))
	}))
	defer gh.Close()
	ctx := context.Background()
	dir := t.TempDir()
	tokenFile, emptyFile := filepath.Join(dir, "token"), filepath.Join(dir, "empty")
	if err := os.WriteFile(tokenFile, []byte("file-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(emptyFile, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		env     map[string]string
		opts    []TokenOption
		want    string
		wantErr string
	}{
		{"file before the environment", map[string]string{"SIGSTORE_ID_TOKEN": "env-token"}, []TokenOption{WithIdentityTokenFile(tokenFile)}, "file-token", ""},
		{"explicit before the file", nil, []TokenOption{WithIdentityToken("flag-token"), WithIdentityTokenFile(tokenFile)}, "flag-token", ""},
		{"missing file", map[string]string{"SIGSTORE_ID_TOKEN": "env-token"}, []TokenOption{WithIdentityTokenFile(filepath.Join(dir, "nope"))}, "", "nope"},
		{"empty file", map[string]string{"SIGSTORE_ID_TOKEN": "env-token"}, []TokenOption{WithIdentityTokenFile(emptyFile)}, "", "empty"},
		{"explicit wins", map[string]string{"SIGSTORE_ID_TOKEN": "env-token"}, []TokenOption{WithIdentityToken("flag-token")}, "flag-token", ""},
		{"environment", map[string]string{"SIGSTORE_ID_TOKEN": "env-token", "ACTIONS_ID_TOKEN_REQUEST_URL": gh.URL + "?api-version=2.0", "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "request-token"}, nil, "env-token", ""},
		{"GitHub Actions", map[string]string{"ACTIONS_ID_TOKEN_REQUEST_URL": gh.URL + "?api-version=2.0", "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "request-token"}, nil, "github-token", ""},
		{"GitHub Actions refuses", map[string]string{"ACTIONS_ID_TOKEN_REQUEST_URL": gh.URL + "?api-version=2.0", "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "wrong"}, nil, "", "403"},
		{"nothing", nil, nil, "", "no identity token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, k := range []string{"SIGSTORE_ID_TOKEN", "ACTIONS_ID_TOKEN_REQUEST_URL", "ACTIONS_ID_TOKEN_REQUEST_TOKEN"} {
				t.Setenv(k, tt.env[k])
			}
			got, err := IDTokenFromEnv(ctx, tt.opts...)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("token = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
	if gotAudience != "sigstore" {
		t.Errorf("audience requested = %q", gotAudience)
	}
	t.Setenv("SIGSTORE_ID_TOKEN", "")
	t.Setenv("ACTIONS_ID_TOKEN_REQUEST_URL", "")
	if _, err := IDTokenFromEnv(ctx); !errors.Is(err, ErrNoIDToken) || !errors.Is(err, ErrInvalidIDToken) {
		t.Errorf("error = %v", err)
	}
}

func TestCheckIDToken(t *testing.T) {
	v := &virtualStack{issuer: "https://issuer.test"}
	now := time.Now()
	tests := []struct {
		name  string
		token string
		want  string
	}{
		{"good", v.token("me@example.test", "sigstore", time.Hour), ""},
		{"audience list", v.token("me@example.test", []string{"other", "sigstore"}, time.Hour), ""},
		{"expired", v.token("me@example.test", "sigstore", -time.Second), "expired"},
		{"wrong audience", v.token("me@example.test", "other", time.Hour), "audience"},
		{"two parts", "a.b", "not a JWT"},
		{"payload not base64", "eyJhbGciOiJSUzI1NiJ9.!!!.c2ln", "base64url"},
		{"payload not JSON", "eyJhbGciOiJSUzI1NiJ9.bm90IGpzb24.c2ln", "not JSON"},
		{"no expiry", "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJpIiwic3ViIjoicyIsImF1ZCI6InNpZ3N0b3JlIn0.c2ln", "no expiry"},
		{"no issuer", "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzIiwiYXVkIjoic2lnc3RvcmUiLCJleHAiOjk5OTk5OTk5OTl9.c2ln", "no issuer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := checkIDToken(tt.token, "sigstore", now)
			switch {
			case tt.want == "" && err != nil:
				t.Fatal(err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want) || !errors.Is(err, ErrInvalidIDToken)):
				t.Fatalf("error = %v, want %q", err, tt.want)
			}
		})
	}
}
