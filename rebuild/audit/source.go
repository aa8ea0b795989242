package audit

import (
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/twinforge/twinforge/hermetic"
	"github.com/twinforge/twinforge/internal/gitexec"
)

// Checkout is the source tree a rebuild builds from, checked against the
// provenance.
type Checkout struct {
	// Dir is the git work tree's top directory, or the context directory
	// of a plain tree.
	Dir string `json:"dir"`
	// ContextDir is the build context inside Dir.
	ContextDir string `json:"contextDir"`
	// Kind is the provenance's source kind, "git" or "tree".
	Kind string `json:"kind"`
	// Commit is HEAD and Tree the git tree of the context directory at
	// HEAD (git only).
	Commit string `json:"commit,omitempty"`
	Tree   string `json:"tree,omitempty"`
	// Repository is where the source was cloned from; empty for a local
	// checkout.
	Repository string `json:"repository,omitempty"`
}

// OpenSource checks a local source tree against the provenance. For a git
// source, dir must be inside a git work tree whose HEAD is the recorded
// commit, with no uncommitted change or untracked file in the build context
// (the lock file excepted: builds never send it; what lies outside the
// context is never built either), and whose tree at the context directory
// is the recorded tree. For a plain tree, dir is
// the build context itself; Inputs.Request checks its content. Every
// mismatch wraps ErrRefused and names what was expected and found.
func OpenSource(ctx context.Context, in *Inputs, dir string) (*Checkout, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("opening source %s: %w", dir, err)
	}
	if fi, err := os.Stat(abs); err != nil || !fi.IsDir() {
		return nil, refusef("source %s is not a directory", dir)
	}
	if in.Source.Kind == hermetic.SourceKindTree {
		return &Checkout{Dir: abs, ContextDir: abs, Kind: in.Source.Kind}, nil
	}
	top, err := git(ctx, abs, "rev-parse", "--show-toplevel")
	if err != nil {
		return nil, refusef("source %s is not a git work tree (the provenance records commit %s of %s): %v", dir, in.Source.Commit, orNone(in.Source.Repository), err)
	}
	return checkWorkTree(ctx, in, dir, top, "")
}

// CloneSource clones the provenance's source repository into dir, which
// must not exist or be empty, checks out the recorded commit and checks
// the result as OpenSource does. A provenance without a repository, or
// with a repository URL git would run a command for, is refused.
func CloneSource(ctx context.Context, in *Inputs, dir string) (*Checkout, error) {
	repo := in.Source.Repository
	switch {
	case in.Source.Kind != hermetic.SourceKindGit:
		return nil, refusef("the provenance's source is a plain directory (%s), not a git repository: give the tree to rebuild from", in.Source.Digest)
	case repo == "":
		return nil, refusef("the provenance names no source repository (built from a clone without remote origin): give a checkout of commit %s", in.Source.Commit)
	case strings.HasPrefix(repo, "-") || strings.Contains(repo, "::"):
		return nil, refusef("source repository %q: not a repository URL twinforge clones", repo)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("cloning %s: %w", repo, err)
	}
	if _, err := git(ctx, "", "clone", "--quiet", "--no-checkout", "--", repo, dir); err != nil {
		return nil, fmt.Errorf("cloning %s: %w", repo, err)
	}
	if _, err := git(ctx, dir, "-c", "advice.detachedHead=false", "checkout", "--quiet", "--detach", in.Source.Commit); err != nil {
		// Not on a branch the clone fetched: ask for the commit itself.
		if _, ferr := git(ctx, dir, "fetch", "--quiet", "origin", in.Source.Commit); ferr != nil {
			return nil, fmt.Errorf("checking out commit %s of %s: %w (fetching it: %v)", in.Source.Commit, repo, err, ferr)
		}
		if _, err := git(ctx, dir, "-c", "advice.detachedHead=false", "checkout", "--quiet", "--detach", in.Source.Commit); err != nil {
			return nil, fmt.Errorf("checking out commit %s of %s: %w", in.Source.Commit, repo, err)
		}
	}
	top, err := git(ctx, dir, "rev-parse", "--show-toplevel")
	if err != nil {
		return nil, fmt.Errorf("cloning %s: %w", repo, err)
	}
	return checkWorkTree(ctx, in, dir, top, repo)
}

func checkWorkTree(ctx context.Context, in *Inputs, dir, top, repo string) (*Checkout, error) {
	if in.Source.Kind != hermetic.SourceKindGit {
		return nil, refusef("source kind %q is not git", in.Source.Kind)
	}
	rel, err := cleanContextPath(in.ContextPath)
	if err != nil {
		return nil, refusef("provenance: %v", err)
	}
	head, err := git(ctx, top, "rev-parse", "--verify", "--quiet", "HEAD^{commit}")
	if err != nil || head == "" {
		return nil, refusef("source %s has no commit checked out; the provenance records commit %s", dir, in.Source.Commit)
	}
	if head != in.Source.Commit {
		return nil, refusef("source %s is at commit %s, but the provenance records commit %s: check out %s first", dir, head, in.Source.Commit, in.Source.Commit)
	}
	if dirty, err := dirtyPaths(ctx, top, rel, path.Join(rel, hermetic.DefaultFileName)); err != nil {
		return nil, err
	} else if len(dirty) > 0 {
		shown, more := dirty, ""
		if len(shown) > 5 {
			shown, more = shown[:5], fmt.Sprintf(" and %d more", len(dirty)-5)
		}
		return nil, refusef("source %s is at commit %s but not clean: uncommitted changes or untracked files: %s%s", dir, head, strings.Join(shown, ", "), more)
	}
	spec := "HEAD^{tree}"
	if rel != "." {
		spec = "HEAD:" + rel
	}
	tree, err := git(ctx, top, "rev-parse", "--verify", "--quiet", spec)
	if err != nil || tree == "" {
		return nil, refusef("commit %s of source %s has no build context directory %s", head, dir, rel)
	}
	if tree != in.Source.Tree {
		return nil, refusef("the build context %s at commit %s has tree %s, but the provenance records tree %s", rel, head, tree, in.Source.Tree)
	}
	return &Checkout{
		Dir:        top,
		ContextDir: filepath.Join(top, filepath.FromSlash(rel)),
		Kind:       hermetic.SourceKindGit,
		Commit:     head,
		Tree:       tree,
		Repository: repo,
	}, nil
}

// cleanContextPath checks the recorded context path: relative, inside the
// repository.
func cleanContextPath(p string) (string, error) {
	if p == "" {
		p = "."
	}
	switch {
	case strings.Contains(p, "\\") || path.IsAbs(p):
		return "", fmt.Errorf("context %q: want a slash-separated path relative to the repository", p)
	case path.Clean(p) != p || p == ".." || strings.HasPrefix(p, "../"):
		return "", fmt.Errorf("context %q: want a clean path inside the repository", p)
	}
	return p, nil
}

// dirtyPaths lists what git status reports under dir (relative to the work
// tree at top), ignored files aside, except the paths in ignore.
func dirtyPaths(ctx context.Context, top, dir string, ignore ...string) ([]string, error) {
	changed, err := gitexec.Changed(ctx, top, dir)
	if err != nil {
		return nil, fmt.Errorf("checking whether %s is clean: %w", top, err)
	}
	return slices.DeleteFunc(changed, func(p string) bool { return slices.Contains(ignore, p) }), nil
}

// git runs git with only the transports gitexec allows: a cloned URL
// comes from the provenance.
func git(ctx context.Context, dir string, args ...string) (string, error) {
	return gitexec.Run(ctx, dir, args...)
}

func orNone(s string) string {
	if s == "" {
		return "no recorded repository"
	}
	return s
}
