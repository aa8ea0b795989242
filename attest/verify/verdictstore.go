package verify

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/sigstore/sigstore-go/pkg/bundle"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/twinforge/twinforge/internal/fsatomic"
)

// verdictSuffix ends the name of every verdict bundle file.
const verdictSuffix = ".sigstore.json"

// WriteVerdict stores a rebuild verdict bundle beside an OCI layout, as
// <layoutDir>/attestations/verdicts/verdict-<hash>.sigstore.json, named by
// a hash of its content so that verdicts of several rebuilders sit side by
// side and writing the same verdict twice keeps one file. The file appears
// whole or not at all. It returns the file's path.
func WriteVerdict(layoutDir string, b *bundle.Bundle) (string, error) {
	if b == nil || b.Bundle == nil {
		return "", errors.New("writing verdict: no bundle")
	}
	if _, err := os.Stat(filepath.Join(layoutDir, "oci-layout")); err != nil {
		return "", fmt.Errorf("writing verdict: %s is not an OCI layout: %w", layoutDir, err)
	}
	data, err := protojson.Marshal(b.Bundle)
	if err != nil {
		return "", fmt.Errorf("writing verdict: encoding bundle: %w", err)
	}
	dir := filepath.Join(layoutDir, AttestationsDir, VerdictsDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("writing verdict: %w", err)
	}
	sum := sha256.Sum256(data)
	final := filepath.Join(dir, "verdict-"+hex.EncodeToString(sum[:8])+verdictSuffix)
	if err := fsatomic.WriteFile(final, data, 0o644); err != nil {
		return "", fmt.Errorf("writing verdict: %w", err)
	}
	return final, nil
}

// ReadVerdicts reads the rebuild verdict bundles stored beside an OCI
// layout (<layoutDir>/attestations/verdicts/*.sigstore.json), sorted by
// file name; none when there are none. A file that is not a valid bundle is
// an error naming it.
func ReadVerdicts(layoutDir string) ([]*bundle.Bundle, error) {
	dir := filepath.Join(layoutDir, AttestationsDir, VerdictsDir)
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading verdicts: %w", err)
	}
	var names []string
	for _, e := range entries {
		if e.Type().IsRegular() && strings.HasSuffix(e.Name(), verdictSuffix) && !strings.HasPrefix(e.Name(), ".") {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	var out []*bundle.Bundle
	for _, n := range names {
		b, err := ReadBundle(filepath.Join(dir, n))
		if err != nil {
			return nil, fmt.Errorf("reading verdict %s: %w", filepath.Join(dir, n), err)
		}
		out = append(out, b)
	}
	return out, nil
}
