package release

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// Target is one release: a tag of an image repository and the image it
// names. Its TUF target path is Repository + ":" + Tag; the target's length
// and sha256 are those of the image manifest, so its sha256 is the image
// digest, and Custom carries the rest.
type Target struct {
	// Repository is the image repository path without the registry host
	// ("payments/app"): the same release holds in every region.
	Repository string `json:"repository"`
	// Tag is the released tag ("1.2").
	Tag string `json:"tag"`
	// Digest is the image manifest digest ("sha256:<hex>").
	Digest string `json:"digest"`
	// MediaType is the manifest's media type.
	MediaType string `json:"mediaType,omitempty"`
	// Provenance is the sha256 of the image's SLSA provenance statement
	// (the in-toto Statement its provenance bundle signs), "sha256:<hex>";
	// empty when the release names no provenance.
	Provenance string `json:"provenance,omitempty"`
	// Role is the TUF role that signed the release: "targets" or a team's
	// delegated role.
	Role string `json:"role"`
	// Size is the manifest's length in bytes.
	Size int64 `json:"size"`
}

// Path is the target's TUF path.
func (t *Target) Path() string { return TargetPath(t.Repository, t.Tag) }

// ProvenanceName is the digest of the provenance statement released, or
// "none".
func (t *Target) ProvenanceName() string {
	if t.Provenance == "" {
		return "none"
	}
	return t.Provenance
}

// TargetPath is the TUF target path of a repository's tag.
func TargetPath(repository, tag string) string { return repository + ":" + tag }

var (
	sha256Digest = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)
	// roleName is what a team's name may be: it becomes a file name.
	roleName = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)
)

// validateRepositoryTag checks a target's repository path and tag as a
// registry would accept them.
func validateRepositoryTag(repository, tag string) error {
	if repository == "" {
		return errors.New("empty repository")
	}
	if _, err := name.NewRepository("registry.invalid/"+repository, name.StrictValidation); err != nil {
		return fmt.Errorf("repository %q: %v", repository, err)
	}
	if _, err := name.NewTag("registry.invalid/"+repository+":"+tag, name.StrictValidation); err != nil || tag == "" {
		return fmt.Errorf("tag %q: not a valid tag", tag)
	}
	return nil
}

// custom is what a target's custom field holds.
type custom struct {
	Repository string `json:"repository"`
	Tag        string `json:"tag"`
	MediaType  string `json:"mediaType,omitempty"`
	Provenance string `json:"provenance,omitempty"`
}

// targetFile makes the TUF target of a release.
func targetFile(t *Target) (*metadata.TargetFiles, error) {
	if err := validateRepositoryTag(t.Repository, t.Tag); err != nil {
		return nil, err
	}
	if !sha256Digest.MatchString(t.Digest) {
		return nil, fmt.Errorf("digest %q: want sha256:<64 hex digits>", t.Digest)
	}
	if t.Provenance != "" && !sha256Digest.MatchString(t.Provenance) {
		return nil, fmt.Errorf("provenance digest %q: want sha256:<64 hex digits>", t.Provenance)
	}
	if t.Size <= 0 {
		return nil, fmt.Errorf("manifest size %d: must be positive", t.Size)
	}
	sum, _ := hex.DecodeString(strings.TrimPrefix(t.Digest, "sha256:"))
	raw, err := json.Marshal(custom{Repository: t.Repository, Tag: t.Tag, MediaType: t.MediaType, Provenance: t.Provenance})
	if err != nil {
		return nil, err
	}
	msg := json.RawMessage(raw)
	tf := metadata.TargetFile()
	tf.Path = t.Path()
	tf.Length = t.Size
	tf.Hashes = metadata.Hashes{"sha256": sum}
	tf.Custom = &msg
	return tf, nil
}

// targetFrom reads a release back from its TUF target.
func targetFrom(path, role string, tf *metadata.TargetFiles) (*Target, error) {
	sum, ok := tf.Hashes["sha256"]
	if !ok || len(sum) != 32 {
		return nil, fmt.Errorf("target %s has no sha256", path)
	}
	t := &Target{Digest: "sha256:" + hex.EncodeToString(sum), Role: role, Size: tf.Length}
	if tf.Custom != nil {
		var c custom
		if err := json.Unmarshal(*tf.Custom, &c); err != nil {
			return nil, fmt.Errorf("target %s: custom: %v", path, err)
		}
		t.Repository, t.Tag, t.MediaType, t.Provenance = c.Repository, c.Tag, c.MediaType, c.Provenance
	}
	// The path is what was signed for; custom must agree with it.
	repo, tag, ok := cutTag(path)
	if !ok {
		return nil, fmt.Errorf("target %s is not REPOSITORY:TAG", path)
	}
	if (t.Repository != "" && t.Repository != repo) || (t.Tag != "" && t.Tag != tag) {
		return nil, fmt.Errorf("target %s: custom names %s:%s", path, t.Repository, t.Tag)
	}
	t.Repository, t.Tag = repo, tag
	// Only what twinforge would write is read: a signed but malformed
	// target is refused, not listed.
	if err := validateRepositoryTag(repo, tag); err != nil {
		return nil, fmt.Errorf("target %s: %v", path, err)
	}
	if t.Size <= 0 {
		return nil, fmt.Errorf("target %s: manifest size %d: must be positive", path, t.Size)
	}
	if t.Provenance != "" && !sha256Digest.MatchString(t.Provenance) {
		return nil, fmt.Errorf("target %s: provenance digest %q: want sha256:<64 hex digits>", path, t.Provenance)
	}
	return t, nil
}

// cutTag splits "repo/path:tag" at the last colon after the last slash.
func cutTag(path string) (string, string, bool) {
	i := strings.LastIndexByte(path, ':')
	if i <= 0 || i < strings.LastIndexByte(path, '/') || i == len(path)-1 {
		return "", "", false
	}
	return path[:i], path[i+1:], true
}
