package pipeline

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/twinforge/twinforge/attest"
	"github.com/twinforge/twinforge/attest/github"
	"github.com/twinforge/twinforge/attest/verify"
	"github.com/twinforge/twinforge/distribute"
	"github.com/twinforge/twinforge/hermetic"
	"github.com/twinforge/twinforge/internal/gitexec"
	"github.com/twinforge/twinforge/isolation"
	"github.com/twinforge/twinforge/rebuild"
)

// attestBuild writes the provenance of a proven build, signs it and the
// manifest and keeps the bundles beside the layout.
func attestBuild(ctx context.Context, req Request, l *hermetic.Lock, res *Result) error {
	// The provenance names the commit that was built, not the one the lock
	// was made at; the lock check proved their contents equal.
	src, err := hermetic.CurrentSource(ctx, req.ContextDir, l.Source.Digest)
	if err != nil {
		return err
	}
	gh, inActions := github.FromEnv(req.Getenv)
	if inActions {
		if err := CheckGitHubSource(src, gh); err != nil {
			return fmt.Errorf("%w: %w", ErrRefused, err)
		}
		src.Repository = gh.RepositoryURL()
	}
	locked := *l
	locked.Source = src
	lockData, err := locked.Marshal()
	if err != nil {
		return err
	}
	provLock, err := attest.ParseLock(lockData)
	if err != nil {
		return err
	}
	built := res.Build
	info := attest.BuildInfo{
		Subject:      attest.Subject{Name: subjectName(req, built.OCILayout), Digest: built.Digest},
		Lock:         provLock,
		ContextPath:  repositoryPath(ctx, req.ContextDir),
		BuilderID:    req.BuilderID,
		Build:        Builder(built.Builder),
		InvocationID: invocationID(),
		StartedOn:    res.Started,
		FinishedOn:   time.Now(),
	}
	if info.BuilderID == "" {
		info.BuilderID = attest.DefaultBuilderID
	}
	if inActions {
		info.GitHub = gh.Map()
		info.InvocationID = gh.InvocationID()
	}
	if p := res.Proof; p != nil {
		var vs []string
		for _, v := range p.Variations {
			vs = append(vs, v.String())
		}
		var warnings []string
		for _, w := range p.Warnings {
			warnings = append(warnings, w.String())
		}
		info.Rebuild = &attest.Rebuild{Digest: p.Rebuild.Digest, Builder: Builder(p.Rebuild.Builder), RebuilderID: info.BuilderID + "#rebuild", Variations: vs,
			StrictVariations: string(p.Strictness), Decided: p.Decided(), Warned: p.Warned(), Warnings: warnings}
	}
	st, err := attest.Provenance(info)
	if err != nil {
		return fmt.Errorf("writing provenance: %w", err)
	}
	statement, err := attest.MarshalStatement(st)
	if err != nil {
		return err
	}
	manifest, err := verify.ReadManifest(built.OCILayout, built.Digest)
	if err != nil {
		return err
	}
	bundles, err := attest.SignBuild(ctx, req.Signer, statement, manifest)
	if err != nil {
		return fmt.Errorf("signing: %w", err)
	}
	if err := verify.WriteBundles(built.OCILayout, bundles); err != nil {
		return err
	}
	res.Bundles = bundles
	if len(req.SBOMFormats) > 0 {
		img, err := distribute.FromLayout(built.OCILayout)
		if err != nil {
			return err
		}
		sboms, err := attest.SignSBOMs(ctx, req.Signer, img, info.Subject, time.Unix(l.SourceDateEpoch, 0), req.SBOMFormats)
		if err != nil {
			return err
		}
		if res.SBOMFiles, err = attest.WriteSBOMBundles(built.OCILayout, sboms); err != nil {
			return err
		}
	}
	if d, err := verify.Describe(bundles.Provenance); err == nil {
		res.Signer = d.Signer
	}
	res.BundleFiles = []string{
		filepath.Join(built.OCILayout, verify.AttestationsDir, verify.ProvenanceFile),
		filepath.Join(built.OCILayout, verify.AttestationsDir, verify.ImageFile),
	}
	return nil
}

// subjectName is the provenance's name for the image: the tag, else the
// repository pushed to, else the layout's directory name.
func subjectName(req Request, layout string) string {
	switch {
	case req.Tag != "":
		return req.Tag
	case req.Pusher != nil:
		return req.Pusher.Repository().Name()
	}
	return filepath.Base(layout)
}

// repositoryPath is the context's path inside its git repository, "" outside
// one.
func repositoryPath(ctx context.Context, dir string) string {
	prefix, err := gitexec.Run(ctx, dir, "rev-parse", "--show-prefix")
	if err != nil {
		return ""
	}
	return strings.TrimSuffix(prefix, "/")
}

// Builder is a daemon's description as provenance records it
// (rebuild.AttestedBuilder).
func Builder(i isolation.Info) attest.Builder { return rebuild.AttestedBuilder(i) }

// push publishes the image and its bundles.
func push(ctx context.Context, req Request, res *Result) (*distribute.PushResult, error) {
	img, err := distribute.FromLayout(res.Build.OCILayout)
	if err != nil {
		return nil, err
	}
	// The bundles go up as they are stored beside the layout.
	var artifacts []distribute.Artifact
	for i, path := range res.BundleFiles {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		ann := map[string]string{verify.AnnotationBundleContent: verify.ContentMessageSignature}
		if i == 0 {
			ann = map[string]string{verify.AnnotationBundleContent: verify.ContentDSSE, verify.AnnotationPredicateType: verify.PredicateSLSAProvenance1}
		}
		artifacts = append(artifacts, distribute.Artifact{ArtifactType: verify.BundleArtifactType, Data: data, Annotations: ann})
	}
	for _, path := range res.SBOMFiles {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		b, err := verify.ParseBundle(data)
		if err != nil {
			return nil, err
		}
		pt := ""
		if info, err := verify.Describe(b); err == nil && info.Statement != nil {
			pt = info.Statement.GetPredicateType()
		}
		artifacts = append(artifacts, distribute.Artifact{ArtifactType: verify.BundleArtifactType, Data: data,
			Annotations: map[string]string{verify.AnnotationBundleContent: verify.ContentDSSE, verify.AnnotationPredicateType: pt}})
	}
	for _, path := range res.VerdictFiles {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		artifacts = append(artifacts, distribute.Artifact{ArtifactType: verify.BundleArtifactType, Data: data,
			Annotations: map[string]string{verify.AnnotationBundleContent: verify.ContentDSSE, verify.AnnotationPredicateType: verify.PredicateRebuildVerdict}})
	}
	return req.Pusher.Push(ctx, img, artifacts)
}
