package hermetic

import (
	"context"
	"fmt"
	"net/url"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/twinforge/twinforge/internal/gitexec"
)

// runGit runs git in dir and returns its trimmed stdout.
func runGit(ctx context.Context, dir string, args ...string) (string, error) {
	return gitexec.Run(ctx, dir, args...)
}

// exitCode returns the exit status of a failed git command, or -1.
func exitCode(err error) int { return gitexec.ExitCode(err) }

type gitState struct {
	commit string
	tree   string
	ref    string
	repo   string
	epoch  int64
	dirty  []string // paths relative to the repository root
}

// inspectGit describes the git work tree that contains dir, or returns nil
// if dir is not inside one (or git is not installed). ignore lists absolute
// paths whose status does not count as dirty (the lock file).
func inspectGit(ctx context.Context, dir string, ignore []string) (*gitState, error) {
	if !gitexec.Available() {
		return nil, nil
	}
	inside, err := runGit(ctx, dir, "rev-parse", "--is-inside-work-tree")
	if err != nil || inside != "true" {
		return nil, nil
	}
	top, err := runGit(ctx, dir, "rev-parse", "--show-toplevel")
	if err != nil {
		return nil, fmt.Errorf("finding git work tree of %s: %w", dir, err)
	}
	prefix, err := runGit(ctx, dir, "rev-parse", "--show-prefix")
	if err != nil {
		return nil, fmt.Errorf("finding git work tree of %s: %w", dir, err)
	}
	prefix = strings.TrimSuffix(prefix, "/")

	var st gitState
	st.commit, err = runGit(ctx, dir, "rev-parse", "--verify", "--quiet", "HEAD^{commit}")
	if err != nil || st.commit == "" {
		return nil, fmt.Errorf("git repository %s has no commits: commit the build context first", top)
	}
	treeSpec := "HEAD^{tree}"
	if prefix != "" {
		treeSpec = "HEAD:" + prefix
	}
	st.tree, err = runGit(ctx, dir, "rev-parse", "--verify", "--quiet", treeSpec)
	if err != nil || st.tree == "" {
		return nil, fmt.Errorf("build context %s (%s in %s) is not committed at HEAD: commit it first", dir, prefix, top)
	}
	if ref, err := runGit(ctx, dir, "symbolic-ref", "--quiet", "HEAD"); err == nil {
		st.ref = ref
	} else if exitCode(err) != 1 {
		return nil, fmt.Errorf("reading HEAD of %s: %w", top, err)
	}
	if repo, err := runGit(ctx, dir, "config", "--get", "remote.origin.url"); err == nil {
		st.repo = stripUserinfo(repo)
	} else if exitCode(err) != 1 {
		return nil, fmt.Errorf("reading remote.origin.url of %s: %w", top, err)
	}
	ct, err := runGit(ctx, dir, "log", "-1", "--format=%ct", "HEAD")
	if err != nil {
		return nil, fmt.Errorf("reading commit time of HEAD in %s: %w", top, err)
	}
	st.epoch, err = strconv.ParseInt(ct, 10, 64)
	if err != nil {
		return nil, fmt.Errorf("reading commit time of HEAD in %s: %q: %w", top, ct, err)
	}

	// Paths to ignore, relative to the repository root.
	realTop, err := filepath.EvalSymlinks(top)
	if err != nil {
		return nil, fmt.Errorf("resolving %s: %w", top, err)
	}
	ignored := map[string]bool{path.Join(prefix, DefaultFileName): true}
	for _, p := range ignore {
		realDir, err := filepath.EvalSymlinks(filepath.Dir(p))
		if err != nil {
			continue
		}
		if rel, err := filepath.Rel(realTop, filepath.Join(realDir, filepath.Base(p))); err == nil && !strings.HasPrefix(rel, "..") {
			ignored[filepath.ToSlash(rel)] = true
		}
	}
	changed, err := gitexec.Changed(ctx, dir, ".")
	if err != nil {
		return nil, fmt.Errorf("checking whether %s is dirty: %w", dir, err)
	}
	for _, p := range changed {
		if !ignored[p] {
			st.dirty = append(st.dirty, p)
		}
	}
	return &st, nil
}

// stripUserinfo removes credentials from a remote URL so they never end up
// in a lock file.
func stripUserinfo(remote string) string {
	u, err := url.Parse(remote)
	if err != nil || u.User == nil || u.Scheme == "" || u.Scheme == "ssh" {
		return remote
	}
	u.User = nil
	return u.String()
}

// lsRemote resolves ref (a branch, tag, full ref name, or "" for HEAD) of
// remote to a commit.
func lsRemote(ctx context.Context, remote, ref string) (string, error) {
	if ref == "" {
		ref = "HEAD"
	}
	// Ask for the peeled form too: "v1" does not match "refs/tags/v1^{}".
	out, err := gitexec.Output(ctx, "", "ls-remote", "--", remote, ref, ref+"^{}")
	if err != nil {
		return "", err
	}
	found := map[string]string{}
	for line := range strings.Lines(out) {
		sha, name, ok := strings.Cut(strings.TrimSpace(line), "\t")
		if ok {
			found[name] = sha
		}
	}
	// Peeled tags (^{}) name the commit an annotated tag points at.
	for _, cand := range []string{
		ref + "^{}", ref,
		"refs/heads/" + ref,
		"refs/tags/" + ref + "^{}", "refs/tags/" + ref,
	} {
		if sha, ok := found[cand]; ok && validCommit(sha) {
			return sha, nil
		}
	}
	return "", fmt.Errorf("ref %q not found in %s", ref, remote)
}

// CurrentSource describes the source as it is now, for the provenance of a
// build of dir: the git commit, tree, ref and repository at HEAD, Dirty when
// the context has uncommitted changes (the lock file aside), and digest,
// which the caller has checked against the lock. A lock records the commit it
// was made at; a build records the commit it built, whose content the lock
// check proved to be the locked content. Outside git it is a tree source.
func CurrentSource(ctx context.Context, dir, digest string) (Source, error) {
	g, err := inspectGit(ctx, dir, nil)
	if err != nil {
		return Source{}, err
	}
	if g == nil {
		return Source{Kind: SourceKindTree, Digest: digest}, nil
	}
	return Source{
		Kind:       SourceKindGit,
		Repository: g.repo,
		Commit:     g.commit,
		Tree:       g.tree,
		Ref:        g.ref,
		Dirty:      len(g.dirty) > 0,
		Digest:     digest,
	}, nil
}
