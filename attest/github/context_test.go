package github

import (
	"maps"
	"testing"
)

// actionsEnv is the environment of a step of a push to main.
var actionsEnv = map[string]string{
	"GITHUB_ACTIONS":             "true",
	"GITHUB_SERVER_URL":          "https://github.com",
	"GITHUB_REPOSITORY":          "octo/app",
	"GITHUB_REPOSITORY_ID":       "123456789",
	"GITHUB_REPOSITORY_OWNER_ID": "987654",
	"GITHUB_REF":                 "refs/heads/main",
	"GITHUB_SHA":                 "7d3b69493aecdf48986c136bccbd1aedc40dcdd7",
	"GITHUB_RUN_ID":              "4242",
	"GITHUB_RUN_ATTEMPT":         "2",
	"GITHUB_WORKFLOW_REF":        "octo/app/.github/workflows/release.yml@refs/heads/main",
	"RUNNER_ENVIRONMENT":         "github-hosted",
	"GITHUB_EVENT_NAME":          "push",
}

// with returns actionsEnv changed by kv (key, value, key, value...); an
// empty value unsets the key.
func with(kv ...string) map[string]string {
	env := maps.Clone(actionsEnv)
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == "" {
			delete(env, kv[i])
		} else {
			env[kv[i]] = kv[i+1]
		}
	}
	return env
}

func getenv(env map[string]string) func(string) string {
	return func(k string) string { return env[k] }
}

func TestFromEnv(t *testing.T) {
	for _, tc := range []struct {
		name                                   string
		env                                    map[string]string
		wantOK                                 bool
		wantSource, wantInvocation, wantServer string
		wantKeys                               int
	}{
		{
			name:           "push to main",
			env:            actionsEnv,
			wantOK:         true,
			wantSource:     "git+https://github.com/octo/app@refs/heads/main",
			wantInvocation: "https://github.com/octo/app/actions/runs/4242/attempts/2",
			wantServer:     "https://github.com",
			wantKeys:       11,
		},
		{
			name:           "tag on GitHub Enterprise Server, trailing slash and spaces",
			env:            with("GITHUB_SERVER_URL", " https://ghe.example/ ", "GITHUB_REF", "refs/tags/v1.2.0"),
			wantOK:         true,
			wantSource:     "git+https://ghe.example/octo/app@refs/tags/v1.2.0",
			wantInvocation: "https://ghe.example/octo/app/actions/runs/4242/attempts/2",
			wantServer:     "https://ghe.example",
			wantKeys:       11,
		},
		{
			name:           "no server URL: github.com",
			env:            with("GITHUB_SERVER_URL", ""),
			wantOK:         true,
			wantSource:     "git+https://github.com/octo/app@refs/heads/main",
			wantInvocation: "https://github.com/octo/app/actions/runs/4242/attempts/2",
			wantServer:     "https://github.com",
			wantKeys:       11,
		},
		{
			name:           "no ref, no attempt",
			env:            with("GITHUB_REF", "", "GITHUB_RUN_ATTEMPT", ""),
			wantOK:         true,
			wantSource:     "git+https://github.com/octo/app",
			wantInvocation: "https://github.com/octo/app/actions/runs/4242",
			wantServer:     "https://github.com",
			wantKeys:       9,
		},
		{
			name:       "no run id",
			env:        with("GITHUB_RUN_ID", ""),
			wantOK:     true,
			wantSource: "git+https://github.com/octo/app@refs/heads/main",
			wantServer: "https://github.com",
			wantKeys:   10,
		},
		{
			name:       "no repository",
			env:        with("GITHUB_REPOSITORY", ""),
			wantOK:     true,
			wantServer: "https://github.com",
			wantKeys:   10,
		},
		{name: "outside GitHub Actions", env: with("GITHUB_ACTIONS", "")},
		{name: "GITHUB_ACTIONS is not true", env: with("GITHUB_ACTIONS", "1")},
		{name: "empty environment", env: map[string]string{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, ok := FromEnv(getenv(tc.env))
			if ok != tc.wantOK {
				t.Fatalf("FromEnv ok = %v, want %v", ok, tc.wantOK)
			}
			if !ok {
				if c != nil {
					t.Errorf("FromEnv = %+v, want nil", c)
				}
				// A nil Context is safe to use: nothing is recorded.
				if m := c.Map(); m != nil {
					t.Errorf("nil Map() = %v, want nil", m)
				}
				if s, i := c.SourceURI(), c.InvocationID(); s != "" || i != "" {
					t.Errorf("nil SourceURI, InvocationID = %q, %q, want empty", s, i)
				}
				return
			}
			if got := c.SourceURI(); got != tc.wantSource {
				t.Errorf("SourceURI() = %q, want %q", got, tc.wantSource)
			}
			if got := c.InvocationID(); got != tc.wantInvocation {
				t.Errorf("InvocationID() = %q, want %q", got, tc.wantInvocation)
			}
			if c.ServerURL != tc.wantServer {
				t.Errorf("ServerURL = %q, want %q", c.ServerURL, tc.wantServer)
			}
			m := c.Map()
			if len(m) != tc.wantKeys {
				t.Errorf("Map() has %d keys, want %d: %v", len(m), tc.wantKeys, m)
			}
			for k, v := range m {
				if v == "" {
					t.Errorf("Map()[%q] is empty: unset fields must be left out", k)
				}
			}
		})
	}
}

// TestMapKeys pins the keys attest.BuildInfo.GitHub records: changing one
// changes the provenance's internalParameters.github.
func TestMapKeys(t *testing.T) {
	c, ok := FromEnv(getenv(actionsEnv))
	if !ok {
		t.Fatal("FromEnv: not in GitHub Actions")
	}
	want := map[string]string{
		"server_url":          "https://github.com",
		"repository":          "octo/app",
		"repository_id":       "123456789",
		"repository_owner_id": "987654",
		"ref":                 "refs/heads/main",
		"sha":                 "7d3b69493aecdf48986c136bccbd1aedc40dcdd7",
		"run_id":              "4242",
		"run_attempt":         "2",
		"workflow_ref":        "octo/app/.github/workflows/release.yml@refs/heads/main",
		"runner_environment":  "github-hosted",
		"event_name":          "push",
	}
	if got := c.Map(); !maps.Equal(got, want) {
		t.Errorf("Map() =\n%v\nwant\n%v", got, want)
	}
	if got, want := c.RepositoryURL(), "https://github.com/octo/app"; got != want {
		t.Errorf("RepositoryURL() = %q, want %q", got, want)
	}
}
