package github

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// fakeJWT makes an unsigned JWT with these claims: UnverifiedClaims never
// looks at the signature.
func fakeJWT(t testing.TB, claims map[string]any) string {
	t.Helper()
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"RS256","typ":"JWT"}`)) + "." + enc(payload) + "." + enc([]byte("signature"))
}

// padPayload adds base64 padding to a JWT's payload, as some encoders do.
func padPayload(jwt string) string {
	p := strings.Split(jwt, ".")
	for len(p[1])%4 != 0 {
		p[1] += "="
	}
	return strings.Join(p, ".")
}

// reusableClaims are the claims of a token issued to a job of twinforge's
// reusable workflow called from octo/app's release workflow.
var reusableClaims = map[string]any{
	"iss":                 Issuer,
	"sub":                 "repo:octo/app:ref:refs/heads/main",
	"aud":                 "sigstore",
	"exp":                 1900000000,
	"repository":          "octo/app",
	"repository_id":       "123456789",
	"repository_owner_id": "987654",
	"ref":                 "refs/heads/main",
	"sha":                 "7d3b69493aecdf48986c136bccbd1aedc40dcdd7",
	"workflow_ref":        "octo/app/.github/workflows/release.yml@refs/heads/main",
	"workflow_sha":        "7d3b69493aecdf48986c136bccbd1aedc40dcdd7",
	"job_workflow_ref":    "twinforge/twinforge/.github/workflows/build.yml@refs/tags/v1",
	"job_workflow_sha":    "0123456789abcdef0123456789abcdef01234567",
	"run_id":              "4242",
	"run_attempt":         "1",
	"runner_environment":  "github-hosted",
	"event_name":          "push",
}

func TestUnverifiedClaims(t *testing.T) {
	withoutJobWorkflow := map[string]any{}
	for k, v := range reusableClaims {
		if k != "job_workflow_ref" {
			withoutJobWorkflow[k] = v
		}
	}
	for _, tc := range []struct {
		name           string
		token          string
		wantBuilderID  string
		wantRepository string
		wantErr        string
	}{
		{
			name:           "reusable workflow",
			token:          fakeJWT(t, reusableClaims),
			wantBuilderID:  "https://github.com/twinforge/twinforge/.github/workflows/build.yml@refs/tags/v1",
			wantRepository: "twinforge/twinforge",
		},
		{
			name:           "padded payload and surrounding space",
			token:          " " + padPayload(fakeJWT(t, reusableClaims)) + "\n",
			wantBuilderID:  "https://github.com/twinforge/twinforge/.github/workflows/build.yml@refs/tags/v1",
			wantRepository: "twinforge/twinforge",
		},
		{name: "not a JWT", token: "opaque-token", wantErr: "not a JWT"},
		{name: "empty", token: "", wantErr: "not a JWT"},
		{name: "payload not base64url", token: "a.b*c.d", wantErr: "not base64url"},
		{name: "payload not JSON", token: base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"RS256"}`)) + "." + base64.RawURLEncoding.EncodeToString([]byte("[1,2")) + ".c2ln", wantErr: "not JSON"},
		{name: "another issuer's token", token: fakeJWT(t, map[string]any{"iss": "https://accounts.example", "email": "dev@example.test"}), wantErr: "no job_workflow_ref"},
		{name: "no job_workflow_ref", token: fakeJWT(t, withoutJobWorkflow), wantErr: "no job_workflow_ref"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := UnverifiedClaims(tc.token)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("UnverifiedClaims error = %v, want one containing %q", err, tc.wantErr)
				}
				if !errors.Is(err, ErrNotActionsToken) {
					t.Errorf("error %v does not wrap ErrNotActionsToken", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("UnverifiedClaims: %v", err)
			}
			if got := c.BuilderID(""); got != tc.wantBuilderID {
				t.Errorf("BuilderID(\"\") = %q, want %q", got, tc.wantBuilderID)
			}
			if got := c.JobWorkflowRepository(); got != tc.wantRepository {
				t.Errorf("JobWorkflowRepository() = %q, want %q", got, tc.wantRepository)
			}
			if c.JobWorkflowSHA != "0123456789abcdef0123456789abcdef01234567" || c.WorkflowRef != "octo/app/.github/workflows/release.yml@refs/heads/main" || c.RunnerEnvironment != "github-hosted" {
				t.Errorf("claims = %+v", c)
			}
		})
	}
}

func TestBuilderID(t *testing.T) {
	for _, tc := range []struct {
		name, ref, server, want, wantRepo string
	}{
		{"github.com", "twinforge/twinforge/.github/workflows/build.yml@refs/tags/v1", "", "https://github.com/twinforge/twinforge/.github/workflows/build.yml@refs/tags/v1", "twinforge/twinforge"},
		{"pinned by commit", "twinforge/twinforge/.github/workflows/build.yml@0123456789abcdef0123456789abcdef01234567", "https://github.com", "https://github.com/twinforge/twinforge/.github/workflows/build.yml@0123456789abcdef0123456789abcdef01234567", "twinforge/twinforge"},
		{"enterprise server", "platform/twinforge/.github/workflows/build.yml@refs/heads/main", "https://ghe.example/", "https://ghe.example/platform/twinforge/.github/workflows/build.yml@refs/heads/main", "platform/twinforge"},
		{"no ref", "", "", "", ""},
		{"malformed", "build.yml", "", "https://github.com/build.yml", ""},
		{"no repository", "octo@refs/heads/main", "", "https://github.com/octo@refs/heads/main", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &Claims{JobWorkflowRef: tc.ref}
			if got := c.BuilderID(tc.server); got != tc.want {
				t.Errorf("BuilderID(%q) = %q, want %q", tc.server, got, tc.want)
			}
			if got := c.JobWorkflowRepository(); got != tc.wantRepo {
				t.Errorf("JobWorkflowRepository() = %q, want %q", got, tc.wantRepo)
			}
		})
	}
	var nilClaims *Claims
	if nilClaims.BuilderID("") != "" || nilClaims.JobWorkflowRepository() != "" {
		t.Error("a nil *Claims must give empty values")
	}
}
