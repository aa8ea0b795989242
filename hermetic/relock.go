package hermetic

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/twinforge/twinforge/internal/fsatomic"
)

// Relock says what a new lock keeps of the lock it replaces, as `twinforge
// lock` run again does.
type Relock struct {
	// Old is the lock being replaced, read from LockPath; image locations
	// are relative to LockPath's directory.
	Old      *Lock
	LockPath string
	// Given reports whether the caller set a setting itself: "dockerfile",
	// "buildArgs", "target" or "platform". The settings not given are kept
	// from Old.
	Given func(setting string) bool
	// Update re-resolves base images (and SOURCE_DATE_EPOCH, unless given)
	// instead of keeping Old's pins.
	Update bool
}

// Inherit takes the settings an earlier lock recorded where req does not
// give them, and, unless r.Update, keeps its image pins: an image Old took
// from an OCI layout is taken from the same layout at the same digest
// (images from a registry are resolved again).
func (req *Request) Inherit(r Relock) {
	old := r.Old
	given := r.Given
	if given == nil {
		given = func(string) bool { return false }
	}
	if !given("dockerfile") {
		req.Dockerfile = old.Dockerfile.Path
	}
	if !given("buildArgs") {
		req.BuildArgs = old.BuildArgs
	}
	if !given("target") {
		req.Target = old.Target
	}
	if !given("platform") {
		req.Platform = old.Platform
	}
	if req.VerifyModules != nil && old.GoSumDB != nil && old.GoSumDB.Name == sumDBName(req.VerifyModules.SumDB) {
		// The database must have grown from the tree head proven last.
		req.VerifyModules.TreeHead = old.GoSumDB.TreeHead
	}
	if req.SourceDateEpoch == nil && !r.Update {
		epoch := old.SourceDateEpoch
		req.SourceDateEpoch = &epoch
	}
	lockDir := filepath.Dir(r.LockPath)
	for _, img := range old.Images {
		if _, set := req.Images[img.Name]; set {
			continue
		}
		path, ok := strings.CutPrefix(img.Location, LocationOCILayout)
		if !ok {
			continue // registry images are resolved again
		}
		if !filepath.IsAbs(path) {
			path = filepath.Join(lockDir, filepath.FromSlash(path))
		}
		mapping := LocationOCILayout + path
		if !r.Update {
			mapping += "@" + img.Digest
		}
		if req.Images == nil {
			req.Images = map[string]string{}
		}
		req.Images[img.Name] = mapping
	}
}

// Write stores the lock at path, atomically; it reports false, and writes
// nothing, when the file holds exactly this lock already.
func (l *Lock) Write(path string) (bool, error) {
	data, err := l.Marshal()
	if err != nil {
		return false, err
	}
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, data) {
		return false, nil
	}
	if err := fsatomic.WriteFile(path, data, 0o644); err != nil {
		return false, err
	}
	return true, nil
}

// CheckTree checks that the lock still matches the tree in contextDir (see
// Check) and that the Dockerfile uses nothing the lock does not pin.
func (l *Lock) CheckTree(ctx context.Context, contextDir string) error {
	if err := Check(ctx, l, contextDir); err != nil {
		return err
	}
	df, err := os.ReadFile(filepath.Join(contextDir, filepath.FromSlash(l.Dockerfile.Path)))
	if err != nil {
		return fmt.Errorf("reading the Dockerfile: %w", err)
	}
	a, err := AnalyzeDockerfile(df, l.BuildArgs, l.Target, l.Platform)
	if err != nil {
		return err
	}
	return l.Verify(a)
}

// sumDBName is the name part of a checksum database key (name+hash+key).
func sumDBName(key string) string {
	n, _, _ := strings.Cut(key, "+")
	return n
}
