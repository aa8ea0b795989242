package release

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// Index is a verified release index: which digest each released tag
// names, and who released it. It is immutable and safe for concurrent
// use; lookups make no request.
type Index struct {
	// URL is the repository it was read from.
	URL string `json:"url"`
	// RootVersion, TimestampVersion and SnapshotVersion are the versions
	// of the metadata that verified.
	RootVersion      int64 `json:"rootVersion"`
	TimestampVersion int64 `json:"timestampVersion"`
	SnapshotVersion  int64 `json:"snapshotVersion"`

	expires time.Time
	top     map[string]*Target
	teams   []*teamIndex
}

// teamIndex is one delegated role as read.
type teamIndex struct {
	name    string
	role    metadata.DelegatedRole
	err     error // the role did not verify
	expires time.Time
	targets map[string]*Target
	// outside are the paths the role lists outside its delegation.
	outside []string
}

// Expires is when the first of the metadata the index was read from
// expires; the index is refused from then on.
func (ix *Index) Expires() time.Time { return ix.expires }

// Lookup returns the release of repository:tag the index lists, as a
// TUF client finds it: the top-level targets first, then the first team
// delegated the path (delegations are terminating). It refuses, with an
// *Error, an expired index (CheckExpired), a path that some team lists
// outside its delegation (CheckDelegation), a team role that did not
// verify (its check), and a tag with no release (CheckNotListed).
func (ix *Index) Lookup(repository, tag string, now time.Time) (*Target, error) {
	if err := ix.fresh(now); err != nil {
		return nil, err
	}
	path := TargetPath(repository, tag)
	for _, t := range ix.teams {
		if t.err == nil && t.listsOutside(path) {
			return nil, refusef(CheckDelegation, t.name, "team %s lists %s, outside the paths it was delegated (%s): the release is refused", t.name, path, strings.Join(t.role.Paths, ", "))
		}
	}
	if tg, ok := ix.top[path]; ok {
		return tg, nil
	}
	for _, t := range ix.teams {
		if ok, _ := t.role.IsDelegatedPath(path); !ok {
			continue
		}
		if t.err != nil {
			return nil, t.err
		}
		if tg, ok := t.targets[path]; ok {
			return tg, nil
		}
		return nil, refusef(CheckNotListed, t.name, "team %s has released no %s", t.name, path)
	}
	return nil, refusef(CheckNotListed, "", "no release of %s: no team is delegated it", path)
}

// Verify checks that repository:tag is released as digest: the digest the
// registry resolved the tag to (or, with tag "", that the index releases
// digest under some tag of repository). It returns the release. A digest
// the index does not list for the tag is refused with CheckNotListed.
func (ix *Index) Verify(repository, tag, digest string, now time.Time) (*Target, error) {
	if tag == "" {
		return ix.findDigest(repository, digest, now)
	}
	t, err := ix.Lookup(repository, tag, now)
	if err != nil {
		return nil, err
	}
	if t.Digest != digest {
		return nil, refusef(CheckNotListed, t.Role, "the index releases %s as %s, not %s", t.Path(), t.Digest, digest)
	}
	return t, nil
}

// findDigest finds a tag of repository that the index releases as digest.
func (ix *Index) findDigest(repository, digest string, now time.Time) (*Target, error) {
	if err := ix.fresh(now); err != nil {
		return nil, err
	}
	var firstErr error
	check := func(tg *Target) (*Target, bool) {
		if tg.Repository != repository || tg.Digest != digest {
			return nil, false
		}
		// Only the role a reader would consult for the path counts.
		found, err := ix.Lookup(tg.Repository, tg.Tag, now)
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			return nil, false
		}
		return found, found.Digest == digest
	}
	for _, tg := range ix.top {
		if found, ok := check(tg); ok {
			return found, nil
		}
	}
	for _, t := range ix.teams {
		if t.err != nil {
			if ok, _ := t.role.IsDelegatedPath(TargetPath(repository, "x")); ok && firstErr == nil {
				firstErr = t.err
			}
			continue
		}
		for _, tg := range t.targets {
			if found, ok := check(tg); ok {
				return found, nil
			}
		}
	}
	if firstErr != nil {
		return nil, firstErr
	}
	return nil, refusef(CheckNotListed, "", "the index releases %s under no tag of %s", digest, repository)
}

// VerifyProvenance checks that the provenance statement an image carries
// (its sha256, "sha256:<hex>") is the one its release names. A release
// that names no provenance accepts any.
func VerifyProvenance(t *Target, statementDigest string) error {
	if t.Provenance == "" || t.Provenance == statementDigest {
		return nil
	}
	return refusef(CheckProvenance, t.Role, "the index releases %s with provenance %s, the image's provenance statement is %s", t.Path(), t.Provenance, statementDigest)
}

func (ix *Index) fresh(now time.Time) error {
	if !now.Before(ix.expires) {
		return refusef(CheckExpired, "", "the index read from %s expired at %s (snapshot version %d): it is stale", ix.URL, ix.expires.UTC().Format(time.RFC3339), ix.SnapshotVersion)
	}
	return nil
}

func (t *teamIndex) listsOutside(path string) bool {
	for _, p := range t.outside {
		if p == path {
			return true
		}
	}
	return false
}

// Problem is something wrong with one team's role: it did not verify, or
// lists paths outside its delegation.
type Problem struct {
	Role    string   `json:"role"`
	Error   string   `json:"error,omitempty"`
	Outside []string `json:"outside,omitempty"`
}

// Problems lists the teams whose roles are refused, wholly or in part.
func (ix *Index) Problems() []Problem {
	var out []Problem
	for _, t := range ix.teams {
		switch {
		case t.err != nil:
			out = append(out, Problem{Role: t.name, Error: t.err.Error()})
		case len(t.outside) > 0:
			out = append(out, Problem{Role: t.name, Outside: t.outside})
		}
	}
	return out
}

// Targets lists the releases the index holds that a reader would find,
// sorted by path.
func (ix *Index) Targets(now time.Time) []*Target {
	seen := map[string]bool{}
	var out []*Target
	add := func(tg *Target) {
		if seen[tg.Path()] {
			return
		}
		seen[tg.Path()] = true
		if found, err := ix.Lookup(tg.Repository, tg.Tag, now); err == nil && found == tg {
			out = append(out, tg)
		}
	}
	for _, tg := range ix.top {
		add(tg)
	}
	for _, t := range ix.teams {
		for _, tg := range t.targets {
			add(tg)
		}
	}
	sortTargets(out)
	return out
}

func sortTargets(ts []*Target) {
	sort.Slice(ts, func(i, j int) bool { return ts[i].Path() < ts[j].Path() })
}

// String summarises the index.
func (ix *Index) String() string {
	return fmt.Sprintf("release index %s (root v%d, snapshot v%d, expires %s)", ix.URL, ix.RootVersion, ix.SnapshotVersion, ix.expires.UTC().Format(time.RFC3339))
}

// Listing is an index as `twinforge release list --output json` prints
// it: its versions, expiry, releases and refused roles.
type Listing struct {
	*Index
	Expires  time.Time `json:"expires"`
	Releases []*Target `json:"releases"`
	Problems []Problem `json:"problems,omitempty"`
}

// Listing lists the releases of ix in force at now.
func (ix *Index) Listing(now time.Time) Listing {
	return Listing{ix, ix.Expires(), ix.Targets(now), ix.Problems()}
}

// WriteText writes the listing as the table `twinforge release list`
// prints, then the refused roles.
func (l Listing) WriteText(w io.Writer) error {
	fmt.Fprintln(w, l.Index)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RELEASE\tDIGEST\tPROVENANCE\tSIGNED BY")
	for _, t := range l.Releases {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", t.Path(), t.Digest, t.ProvenanceName(), t.Role)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, p := range l.Problems {
		if p.Error != "" {
			fmt.Fprintf(w, "refused role %s: %s\n", p.Role, p.Error)
		} else {
			fmt.Fprintf(w, "refused role %s: lists %s outside its delegation\n", p.Role, strings.Join(p.Outside, ", "))
		}
	}
	return nil
}
