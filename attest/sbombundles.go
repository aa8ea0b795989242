package attest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/sigstore/sigstore-go/pkg/bundle"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/twinforge/twinforge/attest/sbom"
	"github.com/twinforge/twinforge/attest/verify"
	"github.com/twinforge/twinforge/internal/fsatomic"
)

// SBOMBundle is one signed SBOM attestation.
type SBOMBundle struct {
	// Format is sbom.SPDX or sbom.CycloneDX.
	Format string
	// PredicateType is the statement's predicate type.
	PredicateType string
	Bundle        *bundle.Bundle
}

// SignSBOMs catalogues the built image, writes its SBOM in each format as
// an in-toto statement about subject, and signs each with s, as the
// provenance is signed. created is the image's time (SOURCE_DATE_EPOCH),
// so that the same image gives the same SBOMs.
func SignSBOMs(ctx context.Context, s Signer, img v1.Image, subject Subject, created time.Time, formats []string) ([]SBOMBundle, error) {
	statements, err := sbom.Generate(img, sbom.Image{Name: subject.Name, Digest: subject.Digest, Created: created}, formats)
	if err != nil {
		return nil, fmt.Errorf("writing SBOMs: %w", err)
	}
	var out []SBOMBundle
	for _, f := range formats {
		b, err := s.SignStatement(ctx, statements[f])
		if err != nil {
			return nil, fmt.Errorf("signing the %s SBOM: %w", f, err)
		}
		pt, _ := sbom.PredicateType(f)
		out = append(out, SBOMBundle{Format: f, PredicateType: pt, Bundle: b})
	}
	return out, nil
}

// WriteSBOMBundles stores SBOM bundles beside an OCI layout, as
// <layout>/attestations/sbom-<format>.sigstore.json (verify.ReadSBOMs
// reads them back). It returns the files written.
func WriteSBOMBundles(layoutDir string, bundles []SBOMBundle) ([]string, error) {
	dir := filepath.Join(layoutDir, verify.AttestationsDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("writing SBOM bundles: %w", err)
	}
	var files []string
	for _, b := range bundles {
		data, err := protojson.Marshal(b.Bundle.Bundle)
		if err != nil {
			return nil, fmt.Errorf("writing SBOM bundles: %w", err)
		}
		path := filepath.Join(dir, verify.SBOMFilePrefix+b.Format+".sigstore.json")
		if err := fsatomic.WriteFile(path, data, 0o644); err != nil {
			return nil, fmt.Errorf("writing SBOM bundles: %w", err)
		}
		files = append(files, path)
	}
	return files, nil
}
