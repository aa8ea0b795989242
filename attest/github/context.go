package github

import (
	"strings"
)

// DefaultServerURL is the server FromEnv assumes when GITHUB_SERVER_URL is
// unset: github.com.
const DefaultServerURL = "https://github.com"

// Context is the GitHub Actions context of one workflow run, as the runner
// exports it to every step. Empty fields were not set.
type Context struct {
	// ServerURL is GITHUB_SERVER_URL, e.g. https://github.com, without a
	// trailing slash; DefaultServerURL when unset.
	ServerURL string
	// Repository is GITHUB_REPOSITORY, OWNER/REPO.
	Repository string
	// RepositoryID and RepositoryOwnerID are GITHUB_REPOSITORY_ID and
	// GITHUB_REPOSITORY_OWNER_ID: numeric ids that, unlike names, are never
	// reused after a repository or owner is renamed or deleted.
	RepositoryID, RepositoryOwnerID string
	// Ref is GITHUB_REF, e.g. refs/heads/main, refs/tags/v1.0 or
	// refs/pull/7/merge.
	Ref string
	// SHA is GITHUB_SHA, the commit the run was triggered for.
	SHA string
	// RunID and RunAttempt are GITHUB_RUN_ID and GITHUB_RUN_ATTEMPT.
	RunID, RunAttempt string
	// WorkflowRef is GITHUB_WORKFLOW_REF, the top-level workflow of the run,
	// OWNER/REPO/.github/workflows/FILE@REF (the caller's, in a reusable
	// workflow).
	WorkflowRef string
	// RunnerEnvironment is RUNNER_ENVIRONMENT: github-hosted or self-hosted.
	RunnerEnvironment string
	// EventName is GITHUB_EVENT_NAME, e.g. push, pull_request or
	// workflow_dispatch.
	EventName string
}

// FromEnv reads the GitHub Actions context from the environment through
// getenv (os.Getenv, or a map's lookup in tests). It returns false, and a
// nil Context, unless GITHUB_ACTIONS is "true": outside GitHub Actions
// nothing is recorded, whatever other GITHUB_* variables say.
func FromEnv(getenv func(string) string) (*Context, bool) {
	get := func(k string) string { return strings.TrimSpace(getenv(k)) }
	if get("GITHUB_ACTIONS") != "true" {
		return nil, false
	}
	c := &Context{
		ServerURL:         strings.TrimRight(get("GITHUB_SERVER_URL"), "/"),
		Repository:        get("GITHUB_REPOSITORY"),
		RepositoryID:      get("GITHUB_REPOSITORY_ID"),
		RepositoryOwnerID: get("GITHUB_REPOSITORY_OWNER_ID"),
		Ref:               get("GITHUB_REF"),
		SHA:               get("GITHUB_SHA"),
		RunID:             get("GITHUB_RUN_ID"),
		RunAttempt:        get("GITHUB_RUN_ATTEMPT"),
		WorkflowRef:       get("GITHUB_WORKFLOW_REF"),
		RunnerEnvironment: get("RUNNER_ENVIRONMENT"),
		EventName:         get("GITHUB_EVENT_NAME"),
	}
	if c.ServerURL == "" {
		c.ServerURL = DefaultServerURL
	}
	return c, true
}

// Keys of the map Map returns: the names of the github context in workflow
// expressions (github.repository, github.sha, ...), except
// runner_environment (runner.environment).
const (
	KeyServerURL         = "server_url"
	KeyRepository        = "repository"
	KeyRepositoryID      = "repository_id"
	KeyRepositoryOwnerID = "repository_owner_id"
	KeyRef               = "ref"
	KeySHA               = "sha"
	KeyRunID             = "run_id"
	KeyRunAttempt        = "run_attempt"
	KeyWorkflowRef       = "workflow_ref"
	KeyRunnerEnvironment = "runner_environment"
	KeyEventName         = "event_name"
)

// Map returns the context as attest.BuildInfo.GitHub records it
// (internalParameters.github of the provenance), one entry per field that
// is set:
//
//	server_url           GITHUB_SERVER_URL           https://github.com
//	repository           GITHUB_REPOSITORY           octo/app
//	repository_id        GITHUB_REPOSITORY_ID        123456789
//	repository_owner_id  GITHUB_REPOSITORY_OWNER_ID  987654
//	ref                  GITHUB_REF                  refs/heads/main
//	sha                  GITHUB_SHA                  7d3b6949…
//	run_id               GITHUB_RUN_ID               4242
//	run_attempt          GITHUB_RUN_ATTEMPT          1
//	workflow_ref         GITHUB_WORKFLOW_REF         octo/app/.github/workflows/release.yml@refs/heads/main
//	runner_environment   RUNNER_ENVIRONMENT          github-hosted
//	event_name           GITHUB_EVENT_NAME           push
//
// A nil Context (outside GitHub Actions) gives a nil map.
func (c *Context) Map() map[string]string {
	if c == nil {
		return nil
	}
	m := map[string]string{}
	for k, v := range map[string]string{
		KeyServerURL:         c.ServerURL,
		KeyRepository:        c.Repository,
		KeyRepositoryID:      c.RepositoryID,
		KeyRepositoryOwnerID: c.RepositoryOwnerID,
		KeyRef:               c.Ref,
		KeySHA:               c.SHA,
		KeyRunID:             c.RunID,
		KeyRunAttempt:        c.RunAttempt,
		KeyWorkflowRef:       c.WorkflowRef,
		KeyRunnerEnvironment: c.RunnerEnvironment,
		KeyEventName:         c.EventName,
	} {
		if v != "" {
			m[k] = v
		}
	}
	return m
}

// RepositoryURL is the repository's web address,
// https://github.com/OWNER/REPO; "" without a repository.
func (c *Context) RepositoryURL() string {
	if c == nil || c.Repository == "" {
		return ""
	}
	return c.server() + "/" + c.Repository
}

// SourceURI names the source the run was triggered for in SLSA's form,
// git+https://github.com/OWNER/REPO@refs/heads/main (without "@REF" when
// the ref is unknown); "" without a repository.
func (c *Context) SourceURI() string {
	u := c.RepositoryURL()
	if u == "" {
		return ""
	}
	if c.Ref != "" {
		u += "@" + c.Ref
	}
	return "git+" + u
}

// InvocationID names this attempt of the run,
// https://github.com/OWNER/REPO/actions/runs/RUN_ID/attempts/N (without
// "/attempts/N" when the attempt is unknown); "" without a repository or a
// run id. A re-run of the same run gets a new attempt, so a new id. It is
// the form of Fulcio's Run Invocation URI extension (OID
// 1.3.6.1.4.1.57264.1.21) in a certificate for the run's OIDC token.
func (c *Context) InvocationID() string {
	u := c.RepositoryURL()
	if u == "" || c.RunID == "" {
		return ""
	}
	u += "/actions/runs/" + c.RunID
	if c.RunAttempt != "" {
		u += "/attempts/" + c.RunAttempt
	}
	return u
}

func (c *Context) server() string {
	if c.ServerURL == "" {
		return DefaultServerURL
	}
	return strings.TrimRight(c.ServerURL, "/")
}
