package github_test

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/twinforge/twinforge/attest"
	"github.com/twinforge/twinforge/attest/github"
)

// TestActionsTokenEndpoint runs the path a build in twinforge's reusable
// workflow takes, against an httptest server standing in for the GitHub
// Actions OIDC token endpoint: attest.IDTokenFromEnv asks the endpoint
// (ACTIONS_ID_TOKEN_REQUEST_URL, bearer ACTIONS_ID_TOKEN_REQUEST_TOKEN,
// audience=sigstore) for the token, UnverifiedClaims reads the reusable
// workflow's ref from it, and FromEnv the run's context. This package does
// not fetch tokens itself: attest already does.
func TestActionsTokenEndpoint(t *testing.T) {
	const bearer = "request-token"
	jwt := func(claims map[string]any) string {
		b, _ := json.Marshal(claims)
		enc := base64.RawURLEncoding.EncodeToString
		return enc([]byte(`{"alg":"RS256"}`)) + "." + enc(b) + "." + enc([]byte("sig"))
	}
	actionsToken := jwt(map[string]any{
		"iss": github.Issuer, "sub": "repo:octo/app:ref:refs/heads/main", "aud": "sigstore", "exp": 1900000000,
		"repository": "octo/app", "ref": "refs/heads/main", "run_id": "4242", "run_attempt": "1",
		"workflow_ref":     "octo/app/.github/workflows/release.yml@refs/heads/main",
		"job_workflow_ref": "twinforge/twinforge/.github/workflows/build.yml@refs/tags/v1",
		"job_workflow_sha": "0123456789abcdef0123456789abcdef01234567",
	})
	otherToken := jwt(map[string]any{"iss": "https://accounts.example", "email": "dev@example.test", "aud": "sigstore", "exp": 1900000000})

	var served string // the token the endpoint hands out
	mux := http.NewServeMux()
	mux.HandleFunc("GET /token", func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Header.Get("Authorization") != "bearer "+bearer:
			http.Error(w, "bad credentials", http.StatusForbidden)
		case r.URL.Query().Get("api-version") != "2.0":
			http.Error(w, "api-version lost", http.StatusBadRequest)
		case r.URL.Query().Get("audience") != attest.DefaultAudience:
			http.Error(w, "want audience sigstore", http.StatusBadRequest)
		case served == "":
			http.Error(w, "token service down", http.StatusInternalServerError)
		default:
			_ = json.NewEncoder(w).Encode(map[string]any{"count": 1, "value": served})
		}
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	for _, tc := range []struct {
		name          string
		served        string
		requestToken  string
		wantBuilderID string
		wantFetchErr  string
		wantClaimsErr error
	}{
		{name: "reusable workflow", served: actionsToken, requestToken: bearer, wantBuilderID: "https://github.com/twinforge/twinforge/.github/workflows/build.yml@refs/tags/v1"},
		{name: "endpoint refuses the request token", served: actionsToken, requestToken: "stolen", wantFetchErr: "403"},
		{name: "endpoint fails", served: "", requestToken: bearer, wantFetchErr: "500"},
		{name: "not an Actions token", served: otherToken, requestToken: bearer, wantClaimsErr: github.ErrNotActionsToken},
	} {
		t.Run(tc.name, func(t *testing.T) {
			served = tc.served
			t.Setenv("SIGSTORE_ID_TOKEN", "")
			t.Setenv("ACTIONS_ID_TOKEN_REQUEST_URL", srv.URL+"/token?api-version=2.0")
			t.Setenv("ACTIONS_ID_TOKEN_REQUEST_TOKEN", tc.requestToken)

			token, err := attest.IDTokenFromEnv(t.Context())
			if tc.wantFetchErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantFetchErr) {
					t.Fatalf("IDTokenFromEnv error = %v, want one containing %q", err, tc.wantFetchErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("IDTokenFromEnv: %v", err)
			}
			claims, err := github.UnverifiedClaims(token)
			if tc.wantClaimsErr != nil {
				if !errors.Is(err, tc.wantClaimsErr) {
					t.Fatalf("UnverifiedClaims error = %v, want %v", err, tc.wantClaimsErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("UnverifiedClaims: %v", err)
			}
			env := map[string]string{
				"GITHUB_ACTIONS": "true", "GITHUB_SERVER_URL": "https://github.com", "GITHUB_REPOSITORY": "octo/app",
				"GITHUB_REF": "refs/heads/main", "GITHUB_RUN_ID": "4242", "GITHUB_RUN_ATTEMPT": "1",
				"GITHUB_WORKFLOW_REF": "octo/app/.github/workflows/release.yml@refs/heads/main",
			}
			gh, ok := github.FromEnv(func(k string) string { return env[k] })
			if !ok {
				t.Fatal("FromEnv: not in GitHub Actions")
			}
			if got := claims.BuilderID(gh.ServerURL); got != tc.wantBuilderID {
				t.Errorf("BuilderID = %q, want %q", got, tc.wantBuilderID)
			}
			// The environment names the caller's workflow, the token the
			// reusable one; the run is the same.
			if claims.WorkflowRef != gh.WorkflowRef || claims.Repository != gh.Repository || claims.RunID != gh.RunID {
				t.Errorf("token claims %+v disagree with the environment %+v", claims, gh)
			}
			if claims.JobWorkflowRef == gh.WorkflowRef {
				t.Error("job_workflow_ref must name the reusable workflow, not the caller's")
			}
		})
	}
}
