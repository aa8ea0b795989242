package pipeline

import (
	"fmt"

	"github.com/twinforge/twinforge/attest/github"
	"github.com/twinforge/twinforge/attest/verify"
	"github.com/twinforge/twinforge/hermetic"
)

// CheckGitHubSource refuses, in GitHub Actions, a source that is not the
// commit of the run's own repository: whoever calls a reusable workflow
// controls the lock file, and the provenance must not name a repository or
// commit the run did not build.
func CheckGitHubSource(src hermetic.Source, gh *github.Context) error {
	if src.Kind != hermetic.SourceKindGit {
		return fmt.Errorf("in GitHub Actions the build context must be inside the checked-out repository %s", gh.Repository)
	}
	if gh.SHA != "" && src.Commit != gh.SHA {
		return fmt.Errorf("the checkout is at %s but the run is for %s (GITHUB_SHA): check out the run's commit", src.Commit, gh.SHA)
	}
	if src.Dirty {
		return fmt.Errorf("the checkout of %s has uncommitted changes: a build in GitHub Actions signs only committed source", gh.Repository)
	}
	if src.Repository != "" && !verify.SameRepository(src.Repository, gh.RepositoryURL()) {
		return fmt.Errorf("the checkout's origin %s is not the run's repository %s", src.Repository, gh.RepositoryURL())
	}
	return nil
}
