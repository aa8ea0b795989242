// Package github reads the GitHub Actions context of a workflow run, for
// the provenance of a build that runs in GitHub Actions.
//
// FromEnv reads the variables the runner exports to every step
// (GITHUB_REPOSITORY, GITHUB_SHA, GITHUB_RUN_ID, ...) into a Context. Its
// Map is what attest.BuildInfo.GitHub records as
// internalParameters.github, SourceURI names the source the run was
// triggered for, and InvocationID names the run attempt
// (metadata.invocationId):
//
//	if gh, ok := github.FromEnv(os.Getenv); ok {
//		info.GitHub = gh.Map()
//		info.InvocationID = gh.InvocationID()
//	}
//
// The environment describes the run and the caller's workflow only. In a
// reusable workflow (twinforge's .github/workflows/build.yml) GITHUB_WORKFLOW_REF
// is still the caller's top-level workflow: the reusable workflow itself is
// named only by the job_workflow_ref and job_workflow_sha claims of the run's
// OIDC token. UnverifiedClaims reads those claims and Claims.BuilderID turns
// them into the builder id Fulcio's certificate for that token will carry as
// its subject, so a provenance's builder id and its signer can be checked
// against each other.
//
// The token itself is fetched by attest.IDTokenFromEnv (SIGSTORE_ID_TOKEN,
// else the GitHub Actions endpoint ACTIONS_ID_TOKEN_REQUEST_URL with the
// bearer ACTIONS_ID_TOKEN_REQUEST_TOKEN, audience "sigstore"); this package
// does not fetch it a second way.
//
// The package depends on the standard library only, so that the admission
// webhook and the verifier can use it without BuildKit.
//
// github.com/slsa-framework/slsa-github-generator's package github (v1.10.0)
// was considered: its WorkflowContext.RepositoryURI builds the same
// git+SERVER/OWNER/REPO@REF form as SourceURI, and its OIDCToken names the same
// claims. It is not imported because the package also holds a REST client
// and test helpers that would link github.com/google/go-github/v57 (60,000
// lines) and the archived gopkg.in/square/go-jose.v2 into twinforge (+3.6 MB
// for a program that only calls RepositoryURI) and raise an indirect
// dependency of the main module, for one fmt.Sprintf; it reads GITHUB_CONTEXT
// (a JSON the workflow must export) rather than the runner's variables, and
// its OIDCClient always verifies against the public GitHub issuer, fetching
// the token a second way besides attest's.
package github
