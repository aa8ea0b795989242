package github

import (
	"errors"
	"fmt"
	"strings"

	"github.com/twinforge/twinforge/internal/jwtclaims"
)

// Issuer is the issuer of GitHub Actions OIDC tokens on github.com.
const Issuer = "https://token.actions.githubusercontent.com"

// ErrNotActionsToken is wrapped by UnverifiedClaims' errors about a token
// that is not a GitHub Actions OIDC token.
var ErrNotActionsToken = errors.New("not a GitHub Actions OIDC token")

// Claims are the claims of a GitHub Actions OIDC token that name the run
// and the workflow the job runs.
//
// JobWorkflowRef and JobWorkflowSHA name the workflow file whose job asked
// for the token: in a reusable workflow, the reusable workflow at the ref
// and commit the caller's `uses:` resolved to, which the caller cannot
// change without changing `uses:` itself. Fulcio (config/identity/config.yaml,
// GitHub's ci-provider templates) copies them into the certificate it issues
// for the token: the subject alternative name and the Build Signer URI
// extension (OID 1.3.6.1.4.1.57264.1.9) are https://github.com/JOB_WORKFLOW_REF,
// the Build Signer Digest (…1.10) is JOB_WORKFLOW_SHA. WorkflowRef, the
// caller's top-level workflow, becomes the Build Config URI (…1.18), and
// RunnerEnvironment the Runner Environment (…1.11).
type Claims struct {
	Issuer            string `json:"iss"`
	Subject           string `json:"sub"`
	Repository        string `json:"repository"`
	RepositoryID      string `json:"repository_id"`
	RepositoryOwnerID string `json:"repository_owner_id"`
	Ref               string `json:"ref"`
	SHA               string `json:"sha"`
	WorkflowRef       string `json:"workflow_ref"`
	WorkflowSHA       string `json:"workflow_sha"`
	JobWorkflowRef    string `json:"job_workflow_ref"`
	JobWorkflowSHA    string `json:"job_workflow_sha"`
	RunID             string `json:"run_id"`
	RunAttempt        string `json:"run_attempt"`
	RunnerEnvironment string `json:"runner_environment"`
	EventName         string `json:"event_name"`
}

// UnverifiedClaims decodes the claims of a GitHub Actions OIDC token
// WITHOUT verifying its signature, its audience or its expiry: it is for
// choosing what to ask Fulcio for (the builder id of the provenance about
// to be signed with a certificate for this very token), never for deciding
// whether to trust anything. Fulcio verifies the token when it issues the
// certificate, and `twinforge verify` checks the certificate.
//
// It refuses a token that is not a JWT or lacks job_workflow_ref, the claim
// only GitHub Actions tokens carry.
func UnverifiedClaims(token string) (*Claims, error) {
	var c Claims
	if err := jwtclaims.Unverified(token, &c); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotActionsToken, err)
	}
	if c.JobWorkflowRef == "" {
		return nil, fmt.Errorf("%w: no job_workflow_ref claim (issuer %q)", ErrNotActionsToken, c.Issuer)
	}
	return &c, nil
}

// BuilderID is the id of the build platform the token's job runs on: the
// workflow that holds the job, serverURL/JOB_WORKFLOW_REF, e.g.
// https://github.com/twinforge/twinforge/.github/workflows/build.yml@refs/tags/v1.
// It is the subject of the Fulcio certificate issued for the token, so a
// provenance signed with that certificate can only carry this builder id if
// the verifier checks both (policy identities and builderIDs). serverURL ""
// means DefaultServerURL.
func (c *Claims) BuilderID(serverURL string) string {
	if c == nil || c.JobWorkflowRef == "" {
		return ""
	}
	if serverURL == "" {
		serverURL = DefaultServerURL
	}
	return strings.TrimRight(serverURL, "/") + "/" + c.JobWorkflowRef
}

// JobWorkflowRepository is the OWNER/REPO part of JobWorkflowRef: the
// repository holding the workflow the job runs (twinforge/twinforge for
// twinforge's reusable workflow), "" if JobWorkflowRef is malformed.
func (c *Claims) JobWorkflowRepository() string {
	if c == nil {
		return ""
	}
	path, _, ok := strings.Cut(c.JobWorkflowRef, "@")
	if !ok {
		return ""
	}
	owner, rest, ok := strings.Cut(path, "/")
	if !ok || owner == "" {
		return ""
	}
	repo, _, ok := strings.Cut(rest, "/")
	if !ok || repo == "" {
		return ""
	}
	return owner + "/" + repo
}
