package audit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/buildkit/client"
	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/root"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/twinforge/twinforge/attest"
	"github.com/twinforge/twinforge/attest/evidence"
	"github.com/twinforge/twinforge/attest/verify"
	"github.com/twinforge/twinforge/builder"
	"github.com/twinforge/twinforge/distribute"
	"github.com/twinforge/twinforge/internal/fsatomic"
	"github.com/twinforge/twinforge/isolation"
	"github.com/twinforge/twinforge/rebuild"
	"github.com/twinforge/twinforge/rebuild/imagediff"
)

// Request is one audit: which published image to rebuild, from what, and
// what to do with the verdict.
type Request struct {
	// Image is the published image: an OCI layout written by twinforge
	// build, or a registry reference (a tag is resolved to its digest).
	// It may be empty when Provenance is given.
	Image string
	// Digest names the image the provenance is about: needed with a
	// Provenance whose statement names several, or a layout holding
	// several.
	Digest string
	// Provenance, when set, is the provenance bundle to rebuild from,
	// instead of the image's own; ProvenanceName names it in messages.
	Provenance     *bundle.Bundle
	ProvenanceName string
	// Policy and TrustedRoot verify the provenance before anything else
	// happens: provenance that fails is never rebuilt. Policy is required.
	Policy      *verify.Policy
	TrustedRoot root.TrustedMaterial
	// Source is a git checkout (clean, at the recorded commit) to build
	// from; empty clones the recorded repository.
	Source string
	// Images maps base image names to OCI layouts (Images.Layouts).
	Images map[string]string
	// OCILayout receives the rebuilt image. The default is
	// out/rebuild-<first 12 hex digits of the digest>.
	OCILayout string
	// RebuilderID is the rebuilder's identity in the verdict. The default
	// is attest.DefaultRebuilderID.
	RebuilderID string
	// Daemons start the private rebuild daemon (never a remote one).
	Daemons rebuild.Daemons
	// StrictVariations also varies what BuildKit pins (umask, time zone),
	// as twinforge build does: the strict rebuild runs first, and the
	// rebuild without them only when it misses the digest
	// (WithStrictVariations). The default is rebuild.StrictOff.
	StrictVariations rebuild.Strictness
	// KeepWork keeps the clone and fetched images in the state directory.
	KeepWork bool
	// Progress receives BuildKit's status; Run closes it. Optional.
	Progress chan<- *client.SolveStatus
	// Signer signs the verdict of a reproduced image; nil signs none.
	Signer attest.Signer
	// VerdictFile receives the signed verdict bundle; a layout Image gets
	// it beside it too (verify.WriteVerdict). PushVerdict attaches it to a
	// registry Image as a referrer.
	VerdictFile string
	PushVerdict bool
	// RegistryOptions reach registries.
	RegistryOptions []distribute.Option
	// Logger receives warnings (another BuildKit version, a published
	// image that cannot be read for the diff). The default discards them.
	Logger *slog.Logger
}

// Report is what an audit found; its JSON form is `twinforge rebuild
// --output json`.
type Report struct {
	Image        string `json:"image"`
	ResolvedFrom string `json:"resolvedFrom,omitempty"`
	// Digest is the published image's, RebuiltDigest the rebuild's.
	Digest        string `json:"digest"`
	RebuiltDigest string `json:"rebuiltDigest,omitempty"`
	// Reproduction is "reproduced" or "not reproducible".
	Reproduction string            `json:"reproduction"`
	Reproducible bool              `json:"reproducible"`
	Provenance   ProvenanceSummary `json:"provenance"`
	Source       Checkout          `json:"source"`
	OCILayout    string            `json:"ociLayout,omitempty"`
	Rebuilder    isolation.Info    `json:"rebuilder"`
	RebuilderID  string            `json:"rebuilderId"`
	Variations   []string          `json:"variations,omitempty"`
	// StrictVariations is off, warn or fail; Warnings what only the pinned
	// variations changed.
	StrictVariations rebuild.Strictness `json:"strictVariations"`
	Warnings         []rebuild.Warning  `json:"warnings,omitempty"`
	DurationSeconds  float64            `json:"durationSeconds"`
	Diff             *imagediff.Report  `json:"diff,omitempty"`
	// Verdict is the signed verdict; nil when not reproduced.
	Verdict *Verdict `json:"verdict,omitempty"`
}

// ProvenanceSummary is who signed the provenance and what it says.
type ProvenanceSummary struct {
	Signer    verify.SignerIdentity `json:"signer"`
	BuilderID string                `json:"builderId"`
	Source    string                `json:"source,omitempty"`
}

// Verdict is the verdict signed for a reproduced image.
type Verdict struct {
	// Method is "keyless", "key" or "none" (no Signer).
	Method   string                 `json:"method"`
	Identity string                 `json:"identity,omitempty"`
	Files    []string               `json:"files,omitempty"`
	Push     *distribute.PushResult `json:"push,omitempty"`
}

// Run audits a published image: it verifies the provenance against the
// policy (a refusal is a *verify.VerificationError, nothing is rebuilt),
// reads the build's inputs from it, checks the source and base images
// (refusals wrap ErrRefused, before a daemon starts), rebuilds the image
// on a private daemon and compares the digests. A different digest returns
// the Report with a *MismatchError (with strict variations also a
// *rebuild.StrictFailure); nothing is signed. The same digest,
// with a Signer, is vouched for by a signed rebuild verdict stored where
// the request says.
func Run(ctx context.Context, req Request) (*Report, error) {
	progress := req.Progress
	defer func() {
		if progress != nil {
			close(progress)
		}
	}()
	started := time.Now()
	log := req.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if req.Policy == nil {
		return nil, errors.New("auditing: no policy: provenance is rebuilt only once it verifies against one")
	}
	if req.RebuilderID == "" {
		req.RebuilderID = attest.DefaultRebuilderID
	}

	// 1. The evidence, verified before anything else happens.
	ev, published, err := findEvidence(ctx, req)
	if err != nil {
		return nil, err
	}
	verified, err := ev.Verify(ctx, req.TrustedRoot, req.Policy)
	var ve *verify.VerificationError
	if errors.As(err, &ve) {
		return nil, fmt.Errorf("the provenance of %s does not verify, so it is not rebuilt: %w", ev.Name(), err)
	}
	if err != nil {
		return nil, err
	}
	in, err := FromProvenance(verified.Statement, ev.Digest.String())
	if err != nil {
		return nil, err
	}
	rep := &Report{
		Image: ev.Where, ResolvedFrom: ev.ResolvedFrom, Digest: ev.Digest.String(), RebuilderID: req.RebuilderID,
		Provenance: ProvenanceSummary{Signer: verified.Identity, BuilderID: verified.BuilderID, Source: join(" @ ", verified.SourceRepository, verified.SourceRef)},
	}

	// 2. The source and the base images, checked before a daemon starts.
	stateDir := req.Daemons.StateDirectory()
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return nil, fmt.Errorf("creating state directory: %w", err)
	}
	work, err := os.MkdirTemp(stateDir, "rebuild-")
	if err != nil {
		return nil, fmt.Errorf("creating the rebuild's work directory: %w", err)
	}
	if !req.KeepWork {
		defer os.RemoveAll(work)
	}
	var co *Checkout
	if req.Source != "" {
		co, err = OpenSource(ctx, in, req.Source)
	} else {
		co, err = CloneSource(ctx, in, filepath.Join(work, "source"))
	}
	if err != nil {
		return nil, err
	}
	rep.Source = *co
	breq, err := in.Request(ctx, co, Images{Layouts: req.Images, Cache: filepath.Join(work, "images")})
	if err != nil {
		return nil, err
	}
	breq.OCILayout = req.OCILayout
	if breq.OCILayout == "" {
		breq.OCILayout = filepath.Join("out", "rebuild-"+ev.Digest.Hex[:12])
	}
	breq.ImageName = in.SubjectName
	breq.Hostname, breq.Ulimit = Hostname, Ulimit

	// 3. The rebuild, on a private daemon of its own.
	var opts []Option
	if published != nil {
		if img, err := published(ctx); err != nil {
			log.Warn("the published image cannot be read; a mismatch will name the digests only", "error", err)
		} else {
			opts = append(opts, WithPublished(img))
		}
	}
	if req.StrictVariations == "" {
		req.StrictVariations = rebuild.StrictOff
	}
	var d, first isolation.Daemon
	if req.StrictVariations == rebuild.StrictOff {
		if d, err = req.Daemons.StartRebuild(ctx); err != nil {
			return nil, fmt.Errorf("starting the rebuild daemon: %w", err)
		}
		first = d
	} else {
		if first, err = req.Daemons.StartStrict(ctx); err != nil {
			return nil, fmt.Errorf("starting the strict rebuild daemon: %w", err)
		}
		d = isolation.OnDemand(req.Daemons.StartRebuild)
		opts = append(opts, WithStrictVariations(req.StrictVariations, builder.New(first)))
	}
	defer rebuild.CloseAll(first, d)
	if got := first.Info().BuildKitVersion; in.BuildKitVersion != "" && got != "" && got != in.BuildKitVersion {
		log.Warn("the rebuilding buildkitd is another version than the build's; a different digest may come from that", "build", in.BuildKitVersion, "rebuild", got)
	}
	breq.Progress, progress = progress, nil
	res, err := Rebuild(ctx, builder.New(d), breq, in.SubjectDigest, opts...)
	if cerr := rebuild.CloseAll(first, d); cerr != nil && err == nil {
		err = fmt.Errorf("stopping the rebuild daemon: %w", cerr)
	}
	var mm *MismatchError
	switch {
	case errors.As(err, &mm):
		rep.fill(res, breq, mm, started)
		if mm.ReportErr != nil {
			log.Warn("comparing the published and the rebuilt image failed", "error", mm.ReportErr)
		}
		why := "not reproducible"
		if mm.Class == rebuild.Pinned {
			why = "not reproducible under the pinned variations (--strict-variations=fail)"
		}
		return rep, fmt.Errorf("%s: %w; no verdict was signed; the rebuilt image is in %s", why, err, mm.Rebuilt.OCILayout)
	case errors.As(err, new(*rebuild.StrictFailure)):
		rep.fill(res, breq, nil, started)
		rep.Reproducible, rep.Reproduction = false, "not reproducible"
		return rep, fmt.Errorf("not reproducible under the pinned variations (--strict-variations=fail): %w; no verdict was signed", err)
	case err != nil:
		return nil, err
	}
	rep.fill(res, breq, nil, started)

	// 4. Only now, the verdict.
	if rep.Verdict, err = signVerdict(ctx, req, ev, verified, in, rep); err != nil {
		return nil, err
	}
	rep.DurationSeconds = time.Since(started).Seconds()
	return rep, nil
}

// findEvidence finds the provenance (and the published image to compare
// with) the request names.
func findEvidence(ctx context.Context, req Request) (*evidence.Evidence, func(context.Context) (v1.Image, error), error) {
	var ev *evidence.Evidence
	var published func(context.Context) (v1.Image, error)
	if req.Image != "" {
		src, err := evidence.Open(req.Image, req.RegistryOptions...)
		if err != nil {
			return nil, nil, err
		}
		if ev, err = src.Evidence(ctx, req.Digest); err != nil {
			return nil, nil, err
		}
		where, digest := ev.Where, ev.Digest.String()
		switch src.(type) {
		case evidence.Layout:
			published = func(ctx context.Context) (v1.Image, error) { return imagediff.Load(ctx, where+"@"+digest) }
		default:
			published = func(ctx context.Context) (v1.Image, error) {
				ref, err := name.NewDigest(where, name.StrictValidation)
				if err != nil {
					return nil, err
				}
				return distribute.Image(ctx, ref, req.RegistryOptions...)
			}
		}
	}
	if req.Provenance == nil {
		if ev == nil {
			return nil, nil, fmt.Errorf("%w: no image and no provenance to rebuild", evidence.ErrInvalidRequest)
		}
		return ev, published, nil
	}
	if ev == nil {
		digest := req.Digest
		if digest == "" {
			var err error
			if digest, err = onlySubject(req.Provenance); err != nil {
				return nil, nil, fmt.Errorf("%w: provenance %s: %v", evidence.ErrInvalidRequest, req.ProvenanceName, err)
			}
		}
		h, err := v1.NewHash(digest)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: digest %q: %v", evidence.ErrInvalidRequest, digest, err)
		}
		ev = &evidence.Evidence{Where: req.ProvenanceName, Digest: h}
	}
	ev.Provenance = []*bundle.Bundle{req.Provenance}
	return ev, published, nil
}

// onlySubject is the digest of the one image a provenance bundle's
// statement is about, read without verifying (Verify checks it).
func onlySubject(b *bundle.Bundle) (string, error) {
	info, err := verify.Describe(b)
	if err != nil {
		return "", err
	}
	if info.Statement == nil {
		return "", errors.New("the bundle holds no in-toto statement")
	}
	var ds []string
	for _, s := range info.Statement.GetSubject() {
		if d := s.GetDigest()["sha256"]; d != "" {
			ds = append(ds, "sha256:"+d)
		}
	}
	if len(ds) != 1 {
		return "", fmt.Errorf("the statement is about %d images (%s): name one with --digest", len(ds), strings.Join(ds, ", "))
	}
	return ds[0], nil
}

func (rep *Report) fill(res *Result, req builder.Request, mm *MismatchError, started time.Time) {
	rebuilt := res.Rebuilt
	rep.RebuiltDigest = rebuilt.Digest
	rep.OCILayout = rebuilt.OCILayout
	rep.Rebuilder = rebuilt.Builder
	rep.Variations = Variations(rebuilt.Builder, req)
	if res.Strict != nil && res.Strict != rebuilt {
		rep.Variations = append(rep.Variations, PinnedVariations(res.Strict.Builder)...)
	}
	rep.StrictVariations = res.Strictness
	rep.Warnings = res.Warnings
	rep.DurationSeconds = time.Since(started).Seconds()
	rep.Reproducible = mm == nil && rebuilt.Digest == rep.Digest
	rep.Reproduction = "reproduced"
	if !rep.Reproducible {
		rep.Reproduction = "not reproducible"
	}
	if mm != nil {
		rep.Diff = mm.Report
	}
}

// signVerdict signs the verdict of a reproduced image and stores it where
// the request says. It is called only after the digests matched.
func signVerdict(ctx context.Context, req Request, ev *evidence.Evidence, verified *evidence.Verified, in *Inputs, rep *Report) (*Verdict, error) {
	if req.Signer == nil {
		return &Verdict{Method: "none"}, nil
	}
	if !rep.Reproducible {
		return nil, errors.New("internal error: a verdict for an image that was not reproduced")
	}
	prov, err := verify.Describe(verified.Bundles.Provenance)
	if err != nil {
		return nil, err
	}
	subject := in.SubjectName
	if subject == "" {
		subject = ev.Where
	}
	st, err := attest.RebuildVerdict(attest.VerdictInfo{
		Subject:           attest.Subject{Name: subject, Digest: rep.Digest},
		RebuiltDigest:     rep.RebuiltDigest,
		RebuilderID:       req.RebuilderID,
		Rebuilder:         attest.Builder{Remote: rep.Rebuilder.Remote, BuildKitVersion: rep.Rebuilder.BuildKitVersion, Runc: rep.Rebuilder.Runc, Snapshotter: rep.Rebuilder.Snapshotter, CPUSet: rep.Rebuilder.CPUSet},
		Variations:        rep.Variations,
		Provenance:        verified.Statement,
		ProvenancePayload: prov.Payload,
		ProvenanceSigner:  verified.Identity,
		Checkout: verify.SourceCheckout{
			Kind: rep.Source.Kind, Repository: rep.Source.Repository, Commit: rep.Source.Commit,
			Tree: rep.Source.Tree, ContextDigest: in.Source.Digest,
		},
		RebuiltOn: time.Now(),
	})
	if err != nil {
		return nil, err
	}
	statement, err := attest.MarshalStatement(st)
	if err != nil {
		return nil, err
	}
	b, err := req.Signer.SignStatement(ctx, statement)
	if err != nil {
		return nil, fmt.Errorf("signing the verdict: %w", err)
	}
	v := &Verdict{Method: "keyless"}
	if info, err := verify.Describe(b); err == nil {
		v.Identity = identityString(info.Signer)
		if info.Signer.PublicKey != "" {
			v.Method = "key"
		}
	}
	data, err := protojson.Marshal(b.Bundle)
	if err != nil {
		return nil, fmt.Errorf("encoding the verdict: %w", err)
	}
	if req.VerdictFile != "" {
		if err := fsatomic.WriteFile(req.VerdictFile, data, 0o644); err != nil {
			return nil, err
		}
		v.Files = append(v.Files, req.VerdictFile)
	}
	if fi, err := os.Stat(req.Image); req.Image != "" && err == nil && fi.IsDir() {
		path, err := verify.WriteVerdict(req.Image, b)
		if err != nil {
			return nil, err
		}
		v.Files = append(v.Files, path)
	}
	if req.PushVerdict {
		ref, err := name.NewDigest(ev.Where, name.StrictValidation)
		if err != nil {
			return nil, fmt.Errorf("%w: --push-verdict needs an image in a registry: %v", evidence.ErrInvalidRequest, err)
		}
		art := distribute.Artifact{
			ArtifactType: verify.BundleArtifactType,
			Data:         data,
			Annotations:  map[string]string{verify.AnnotationBundleContent: verify.ContentDSSE, verify.AnnotationPredicateType: verify.PredicateRebuildVerdict},
		}
		if v.Push, err = distribute.Attach(ctx, ref, []distribute.Artifact{art}, req.RegistryOptions...); err != nil {
			return nil, err
		}
	}
	return v, nil
}

// identityString names a signer for output.
func identityString(id verify.SignerIdentity) string {
	if id.PublicKey != "" {
		return "key " + id.PublicKey
	}
	return id.Subject + " (issuer " + id.Issuer + ")"
}

func join(sep string, parts ...string) string {
	return strings.Join(slices.DeleteFunc(slices.Clone(parts), func(s string) bool { return s == "" }), sep)
}
