package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/urfave/cli/v2"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/twinforge/twinforge/attest"
	"github.com/twinforge/twinforge/attest/verify"
	"github.com/twinforge/twinforge/builder"
	"github.com/twinforge/twinforge/distribute"
	"github.com/twinforge/twinforge/internal/fsatomic"
	"github.com/twinforge/twinforge/isolation"
	"github.com/twinforge/twinforge/rebuild"
	"github.com/twinforge/twinforge/rebuild/audit"
	"github.com/twinforge/twinforge/rebuild/imagediff"
)

func rebuildCommand() *cli.Command {
	return &cli.Command{
		Name:      "rebuild",
		Usage:     "rebuild a published image from its provenance alone and sign a verdict when the digest matches",
		ArgsUsage: "[REGISTRY/REPOSITORY@sha256:... | REGISTRY/REPOSITORY:TAG | LAYOUT]",
		Description: `The auditor's path: repeats a published twinforge build on this machine from
nothing but its signed provenance, and says whether it lands on the published
digest.

The provenance comes from the image's referrers in its registry (a tag is
resolved to a digest first), from the bundles beside an OCI layout written by
twinforge build, or from --provenance FILE (then IMAGE, if given, is only the
published image to compare with). It is verified against --policy and the
trusted root first; provenance that fails is never rebuilt (exit 4).

The build is reconstructed from the provenance alone: the source commit, the
context directory and the Dockerfile (checked against its recorded digest),
build arguments, target, platform, SOURCE_DATE_EPOCH, the base images by
digest and the source policy admitting only the recorded images, URLs and git
commits. The source is --source DIR, a git work tree that must be clean and at
the recorded commit, or else a fresh clone of the recorded repository at that
commit. Base images come from --image NAME=oci-layout:PATH[:TAG] mappings, each
of which must hold the recorded digest, or are fetched from their registry by
digest. Any of these not matching is refused with exit 4 before a daemon
starts.

The image is rebuilt in a private buildkitd started for it (with the rebuild
variations of twinforge build: native snapshotter, one CPU, another hostname
and open-files limit), with nothing reused from earlier builds, into
--oci-layout. A different digest exits 3 with what differs between the
published and the rebuilt image, and nothing is signed. --strict-variations
also varies what BuildKit pins, umask and time zone, as twinforge build does:
the strict rebuild (into DIR-strict) runs first, and only if it misses the
digest the plain rebuild decides; what only umask or time zone changed is a
warning naming the file, or exit 3 with --strict-variations=fail. The same digest, with --sign keyless or --sign key=FILE,
is vouched for by a signed rebuild verdict (predicate
https://twinforge.dev/attestations/rebuild/v1, see attest/verdict.md): written
to --verdict FILE, beside LAYOUT (LAYOUT/attestations/verdicts/), and with
--push-verdict attached to the registry image as a referrer. Policies count
verdicts with requireRebuildVerdicts (attest/policy.md).

Examples:
  twinforge rebuild --policy policy.yaml --trusted-root trusted_root.json \
      --sign keyless --rebuilder-id https://rebuild.example/v1 --push-verdict \
      registry.example/team/hello@sha256:aa03...
  twinforge rebuild --policy policy.yaml --trusted-root trusted_root.json \
      --source ~/src/hello --image example.test/base:1=oci-layout:examples/base/out \
      --verdict hello.verdict.json registry.example/team/hello:1.0
  twinforge rebuild --policy policy.yaml --trusted-root trusted_root.json \
      --provenance provenance.sigstore.json --source . out/hello`,
		Flags: append(append([]cli.Flag{
			&cli.StringFlag{Name: "policy", Usage: "policy `FILE` the provenance must satisfy (required; see attest/policy.md)"},
			&cli.StringFlag{Name: "provenance", Usage: "provenance bundle `FILE` (instead of the image's own)"},
			&cli.StringFlag{Name: "digest", Usage: "the image the provenance is about (sha256:...): with --provenance when its statement names several, or a LAYOUT holding several"},
			&cli.StringFlag{Name: "source", Usage: "build from the git checkout `DIR` (clean, at the provenance's commit) instead of cloning the provenance's repository"},
			&cli.StringSliceFlag{Name: "image", Usage: "take base image `NAME=oci-layout:PATH[:TAG]` from an OCI layout, which must hold the provenance's digest for it (repeatable)"},
			&cli.StringFlag{Name: "oci-layout", Usage: "write the rebuilt image to `DIR` (default: out/rebuild-<digest>)"},
			&cli.StringFlag{Name: "rebuilder-id", Value: attest.DefaultRebuilderID, Usage: "the rebuilder's identity recorded in the verdict, a URI"},
			&cli.StringFlag{Name: "verdict", Usage: "write the signed verdict bundle to `FILE`"},
			&cli.BoolFlag{Name: "push-verdict", Usage: "attach the signed verdict to the registry image as an OCI 1.1 referrer"},
			&cli.StringFlag{Name: "progress", Value: "auto", Usage: "progress display on stderr: auto, plain, tty, rawjson or quiet"},
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Value: "text", Usage: "result format on stdout: text or json"},
			strictVariationsFlag(),
			&cli.StringFlag{Name: "runc-shim", Usage: "runtime shim that varies umask and time zone in the strict rebuild", Value: defaultBinary("twinforge-runc-shim"), EnvVars: []string{"TWINFORGE_RUNC_SHIM"}},
		}, rebuildDaemonFlags()...), rebuildSignFlags()...),
		Action: runRebuild,
	}
}

// rebuildDaemonFlags are the daemon flags that apply: a rebuild always gets
// a private daemon of its own, never a remote one.
func rebuildDaemonFlags() []cli.Flag {
	keep := []string{"state-dir", "keep-state", "buildkitd", "runc"}
	return slices.DeleteFunc(daemonFlags(), func(f cli.Flag) bool { return !slices.Contains(keep, f.Names()[0]) })
}

// rebuildSignFlags are build's signing flags for the verdict, without
// --push and --builder-id, which are about a build.
func rebuildSignFlags() []cli.Flag {
	var out []cli.Flag
	for _, f := range signFlags() {
		switch f.Names()[0] {
		case "push", "builder-id":
			continue
		case "trusted-root":
			f = &cli.StringFlag{Name: "trusted-root", Usage: "Sigstore trusted root `FILE`: verifies the provenance (required when the policy trusts certificates, timestamps or a log) and the signed verdict", EnvVars: []string{"TWINFORGE_TRUSTED_ROOT"}}
		case "insecure":
			f = &cli.BoolFlag{Name: "insecure", Usage: "allow plain HTTP to a loopback registry (127.0.0.0/8, ::1, localhost) only"}
		case "ca-cert":
			f = &cli.StringFlag{Name: "ca-cert", Usage: "trust the CA certificates in PEM `FILE` for the registry"}
		}
		out = append(out, f)
	}
	return out
}

// rebuildOptions is what the rebuild command's flags parse to.
type rebuildOptions struct {
	image       string
	provenance  string
	digest      string
	policyPath  string
	trustedRoot string
	source      string
	images      map[string]string
	ociLayout   string
	rebuilderID string
	verdict     string
	pushVerdict bool
	progress    string
	output      string
	shim        string
	strict      rebuild.Strictness
	daemon      daemonConfig
	sign        *signOptions
}

func rebuildOptionsFrom(c *cli.Context) (*rebuildOptions, error) {
	if c.NArg() > 1 {
		return nil, usageErrorf("rebuild takes at most one IMAGE, got %d arguments: %s", c.NArg(), strings.Join(c.Args().Slice(), " "))
	}
	o := &rebuildOptions{
		image:       c.Args().First(),
		provenance:  c.String("provenance"),
		digest:      c.String("digest"),
		policyPath:  c.String("policy"),
		trustedRoot: c.String("trusted-root"),
		source:      c.String("source"),
		ociLayout:   c.String("oci-layout"),
		rebuilderID: c.String("rebuilder-id"),
		verdict:     c.String("verdict"),
		pushVerdict: c.Bool("push-verdict"),
		progress:    c.String("progress"),
		output:      c.String("output"),
		shim:        c.String("runc-shim"),
		strict:      strictVariationsFrom(c),
	}
	var err error
	if o.images, err = parseImageMappings(c.StringSlice("image")); err != nil {
		return nil, usageError(err)
	}
	if o.daemon, err = daemonConfigFrom(c); err != nil {
		return nil, err
	}
	if o.sign, err = signOptionsFrom(c); err != nil {
		return nil, err
	}
	return o, o.validate()
}

func (o *rebuildOptions) validate() error {
	if err := oneOf("progress", o.progress, progressModes...); err != nil {
		return usageError(err)
	}
	if err := oneOf("output", o.output, "text", "json"); err != nil {
		return usageError(err)
	}
	switch {
	case o.policyPath == "":
		return usageErrorf("--policy FILE is required: a provenance is rebuilt only once it verifies against a policy")
	case o.image == "" && o.provenance == "":
		return usageErrorf("missing IMAGE: give REGISTRY/REPOSITORY@sha256:..., an OCI layout, or --provenance FILE")
	case o.digest != "" && !strings.HasPrefix(o.digest, "sha256:"):
		return usageErrorf("--digest %q: want sha256:<hex>", o.digest)
	case o.rebuilderID == "":
		return usageErrorf("--rebuilder-id must not be empty")
	case o.sign.method == "none" && (o.verdict != "" || o.pushVerdict):
		return usageErrorf("--verdict and --push-verdict need a signed verdict: give --sign keyless or --sign key=FILE")
	case o.pushVerdict && (o.image == "" || !looksLikeReference(o.image)):
		return usageErrorf("--push-verdict attaches the verdict to an image in a registry: give IMAGE as REGISTRY/REPOSITORY@sha256:...")
	}
	if o.source != "" {
		if fi, err := os.Stat(o.source); err != nil || !fi.IsDir() {
			return usageErrorf("--source %s: not a directory", o.source)
		}
	}
	return nil
}

// auditOutput is the result of a rebuild as --output json prints it.
type auditOutput struct {
	Image        string `json:"image"`
	ResolvedFrom string `json:"resolvedFrom,omitempty"`
	// Digest is the published image's, RebuiltDigest the rebuild's.
	Digest        string `json:"digest"`
	RebuiltDigest string `json:"rebuiltDigest,omitempty"`
	// Reproduction is "reproduced" or "not reproducible".
	Reproduction string          `json:"reproduction"`
	Reproducible bool            `json:"reproducible"`
	Provenance   auditProvenance `json:"provenance"`
	Source       audit.Checkout  `json:"source"`
	OCILayout    string          `json:"ociLayout,omitempty"`
	Rebuilder    isolation.Info  `json:"rebuilder"`
	RebuilderID  string          `json:"rebuilderId"`
	Variations   []string        `json:"variations,omitempty"`
	// StrictVariations is off, warn or fail; Warnings what only the pinned
	// variations changed.
	StrictVariations rebuild.Strictness `json:"strictVariations"`
	Warnings         []rebuild.Warning  `json:"warnings,omitempty"`
	DurationSeconds  float64            `json:"durationSeconds"`
	Diff             *imagediff.Report  `json:"diff,omitempty"`
	Verdict          *auditVerdict      `json:"verdict,omitempty"`

	verified *verify.Result
	inputs   *audit.Inputs
}

type auditProvenance struct {
	Signer    verify.SignerIdentity `json:"signer"`
	BuilderID string                `json:"builderId"`
	Source    string                `json:"source,omitempty"`
}

type auditVerdict struct {
	Method   string                 `json:"method"`
	Identity string                 `json:"identity,omitempty"`
	Files    []string               `json:"files,omitempty"`
	Push     *distribute.PushResult `json:"push,omitempty"`
}

func runRebuild(c *cli.Context) error {
	ctx := c.Context
	o, err := rebuildOptionsFrom(c)
	if err != nil {
		return err
	}
	started := time.Now()
	policy, err := verify.LoadPolicy(o.policyPath)
	if err != nil {
		return usageError(err)
	}
	if policy.NeedsTrustedRoot() && o.trustedRoot == "" {
		return usageErrorf("the policy trusts certificates, timestamps or a log: give --trusted-root FILE")
	}

	// 1. The evidence, verified before anything else happens.
	ev, published, err := o.evidence(ctx)
	if err != nil {
		return err
	}
	trusted, err := optionalTrustedRoot(o.trustedRoot)
	if err != nil {
		return err
	}
	verified, err := verifyEvidence(ctx, ev, trusted, policy)
	var ve *verify.VerificationError
	if errors.As(err, &ve) {
		return refused(fmt.Errorf("the provenance of %s does not verify, so it is not rebuilt: %w", ev.name(), err))
	}
	if err != nil {
		return err
	}
	in, err := audit.FromProvenance(verified.Statement, ev.digest)
	if err != nil {
		return auditError(err)
	}
	out := &auditOutput{
		Image: ev.where, ResolvedFrom: ev.resolvedFrom, Digest: ev.digest, RebuilderID: o.rebuilderID,
		Provenance: auditProvenance{Signer: verified.Identity, BuilderID: verified.BuilderID, Source: attestJoin(" @ ", verified.SourceRepository, verified.SourceRef)},
		verified:   verified, inputs: in,
	}

	// 2. The source and the base images, checked before a daemon starts.
	if err := os.MkdirAll(o.daemon.stateDir, 0o700); err != nil {
		return fmt.Errorf("creating state directory: %w", err)
	}
	work, err := os.MkdirTemp(o.daemon.stateDir, "rebuild-")
	if err != nil {
		return fmt.Errorf("creating the rebuild's work directory: %w", err)
	}
	if !o.daemon.keepState {
		defer os.RemoveAll(work)
	}
	var co *audit.Checkout
	if o.source != "" {
		co, err = audit.OpenSource(ctx, in, o.source)
	} else {
		co, err = audit.CloneSource(ctx, in, filepath.Join(work, "source"))
	}
	if err != nil {
		return auditError(err)
	}
	out.Source = *co
	req, err := in.Request(ctx, co, audit.Images{Layouts: o.images, Cache: filepath.Join(work, "images")})
	if err != nil {
		return auditError(err)
	}
	if o.ociLayout == "" {
		o.ociLayout = filepath.Join("out", "rebuild-"+strings.TrimPrefix(ev.digest, "sha256:")[:12])
	}
	req.OCILayout = o.ociLayout
	req.ImageName = in.SubjectName
	req.Hostname, req.Ulimit = audit.Hostname, audit.Ulimit

	// 3. The rebuild, on a private daemon of its own.
	res, err := o.rebuild(c, req, in, published)
	var mm *audit.MismatchError
	switch {
	case errors.As(err, &mm):
		out.fill(res, req, mm, started)
		if werr := writeAuditResult(c.App.Writer, o.output, out); werr != nil {
			return werr
		}
		writeWarnings(c.App.ErrWriter, out.Warnings)
		if o.output == "text" && mm.Report != nil {
			fmt.Fprintln(c.App.ErrWriter, "\nwhat differs between the published image (a) and the rebuild (b):")
			_ = mm.Report.WriteText(c.App.ErrWriter)
		}
		if mm.ReportErr != nil {
			logger().Warn("comparing the published and the rebuilt image failed", "error", mm.ReportErr)
		}
		why := "not reproducible"
		if mm.Class == rebuild.Pinned {
			why = "not reproducible under the pinned variations (--strict-variations=fail)"
		}
		return &codedError{code: exitNotReproducible, err: fmt.Errorf("%s: %w; no verdict was signed; the rebuilt image is in %s", why, err, mm.Rebuilt.OCILayout)}
	case errors.As(err, new(*rebuild.StrictFailure)):
		out.fill(res, req, nil, started)
		out.Reproducible, out.Reproduction = false, "not reproducible"
		if werr := writeAuditResult(c.App.Writer, o.output, out); werr != nil {
			return werr
		}
		writeWarnings(c.App.ErrWriter, out.Warnings)
		return &codedError{code: exitNotReproducible, err: fmt.Errorf("not reproducible under the pinned variations (--strict-variations=fail): %w; no verdict was signed", err)}
	case err != nil:
		return err
	}
	out.fill(res, req, nil, started)
	writeWarnings(c.App.ErrWriter, out.Warnings)

	// 4. Only now, the verdict.
	if out.Verdict, err = o.signVerdict(c, ev, out); err != nil {
		return err
	}
	out.DurationSeconds = time.Since(started).Seconds()
	return writeAuditResult(c.App.Writer, o.output, out)
}

// optionalTrustedRoot loads the trusted root a flag names; nil for none.
func optionalTrustedRoot(path string) (root.TrustedMaterial, error) {
	if path == "" {
		return nil, nil
	}
	tr, err := verify.LoadTrustedRoot(path)
	if err != nil {
		return nil, usageError(err)
	}
	return tr, nil
}

// evidence finds the provenance (and the published image to compare with)
// the flags name.
func (o *rebuildOptions) evidence(ctx context.Context) (*imageEvidence, func(context.Context) (v1.Image, error), error) {
	var ev *imageEvidence
	var published func(context.Context) (v1.Image, error)
	if o.image != "" {
		src, err := evidenceSourceFor(o.image, o.sign.registry.options()...)
		if err != nil {
			return nil, nil, err
		}
		if ev, err = src.evidence(ctx, o.digest); err != nil {
			return nil, nil, err
		}
		where, digest := ev.where, ev.digest
		switch src.(type) {
		case layoutSource:
			published = func(ctx context.Context) (v1.Image, error) { return imagediff.Load(ctx, where+"@"+digest) }
		case *registrySource:
			published = func(ctx context.Context) (v1.Image, error) {
				ref, err := name.NewDigest(where, name.StrictValidation)
				if err != nil {
					return nil, err
				}
				return distribute.Image(ctx, ref, o.sign.registry.options()...)
			}
		}
	}
	if o.provenance == "" {
		return ev, published, nil
	}
	data, err := os.ReadFile(o.provenance)
	if err != nil {
		return nil, nil, usageErrorf("--provenance: %w", err)
	}
	b, err := verify.ParseBundle(data)
	if err != nil {
		return nil, nil, refused(fmt.Errorf("--provenance %s: %w; it is not rebuilt", o.provenance, err))
	}
	if ev == nil {
		digest := o.digest
		if digest == "" {
			if digest, err = onlySubject(b); err != nil {
				return nil, nil, usageErrorf("--provenance %s: %v", o.provenance, err)
			}
		}
		ev = &imageEvidence{where: o.provenance, digest: digest}
	}
	var imgs []*bundle.Bundle
	for _, cand := range ev.candidates {
		if cand.Image != nil && !slices.Contains(imgs, cand.Image) {
			imgs = append(imgs, cand.Image)
		}
	}
	if len(imgs) == 0 {
		imgs = []*bundle.Bundle{nil}
	}
	ev.candidates = nil
	for _, img := range imgs {
		ev.candidates = append(ev.candidates, verify.Bundles{Provenance: b, Image: img})
	}
	ev.bundles = ev.candidates[0]
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

// rebuild starts a private daemon and rebuilds req on it; with strict
// variations a strict daemon first, and the plain one only if needed.
func (o *rebuildOptions) rebuild(c *cli.Context, req builder.Request, in *audit.Inputs, published func(context.Context) (v1.Image, error)) (*audit.Result, error) {
	ctx := c.Context
	var opts []audit.Option
	if published != nil {
		img, err := published(ctx)
		if err != nil {
			logger().Warn("the published image cannot be read; a mismatch will name the digests only", "error", err)
		} else {
			opts = append(opts, audit.WithPublished(img))
		}
	}
	start := func(ctx context.Context) (isolation.Daemon, error) {
		d, err := o.daemon.start(ctx, "rebuild", rebuild.DaemonOptions()...)
		if err != nil {
			return nil, fmt.Errorf("starting the rebuild daemon: %w", err)
		}
		return d, nil
	}
	var d, first isolation.Daemon
	var err error
	if o.strict == rebuild.StrictOff {
		if d, err = start(ctx); err != nil {
			return nil, err
		}
		first = d
	} else {
		if first, err = o.daemon.start(ctx, "strict", rebuild.StrictDaemonOptions(o.shim)...); err != nil {
			return nil, fmt.Errorf("starting the strict rebuild daemon: %w", err)
		}
		defer first.Close()
		d = isolation.OnDemand(start)
		opts = append(opts, audit.WithStrictVariations(o.strict, builder.New(first)))
	}
	defer d.Close()
	if got := first.Info().BuildKitVersion; in.BuildKitVersion != "" && got != "" && got != in.BuildKitVersion {
		logger().Warn("the rebuilding buildkitd is another version than the build's; a different digest may come from that", "build", in.BuildKitVersion, "rebuild", got)
	}
	ch, wait, err := progressDisplay(ctx, c.App.ErrWriter, o.progress)
	if err != nil {
		return nil, err
	}
	req.Progress = ch
	res, err := audit.Rebuild(ctx, builder.New(d), req, in.SubjectDigest, opts...)
	if werr := wait(); werr != nil && err == nil {
		err = werr
	}
	if cerr := closeAll([]isolation.Daemon{first, d}); cerr != nil && err == nil {
		err = fmt.Errorf("stopping the rebuild daemon: %w", cerr)
	}
	return res, err
}

func (out *auditOutput) fill(res *audit.Result, req builder.Request, mm *audit.MismatchError, started time.Time) {
	rebuilt := res.Rebuilt
	out.RebuiltDigest = rebuilt.Digest
	out.OCILayout = rebuilt.OCILayout
	out.Rebuilder = rebuilt.Builder
	out.Variations = audit.Variations(rebuilt.Builder, req)
	if res.Strict != nil && res.Strict != rebuilt {
		out.Variations = append(out.Variations, audit.PinnedVariations(res.Strict.Builder)...)
	}
	out.StrictVariations = res.Strictness
	out.Warnings = res.Warnings
	out.DurationSeconds = time.Since(started).Seconds()
	out.Reproducible = mm == nil && rebuilt.Digest == out.Digest
	out.Reproduction = "reproduced"
	if !out.Reproducible {
		out.Reproduction = "not reproducible"
	}
	if mm != nil {
		out.Diff = mm.Report
	}
}

// signVerdict signs the verdict of a reproduced image and stores it where
// the flags say. It is called only after the digests matched.
func (o *rebuildOptions) signVerdict(c *cli.Context, ev *imageEvidence, out *auditOutput) (*auditVerdict, error) {
	v := &auditVerdict{Method: o.sign.method}
	if o.sign.method == "none" {
		return v, nil
	}
	if !out.Reproducible {
		return nil, errors.New("internal error: a verdict for an image that was not reproduced")
	}
	prov, err := verify.Describe(ev.bundles.Provenance)
	if err != nil {
		return nil, err
	}
	subject := out.inputs.SubjectName
	if subject == "" {
		subject = ev.where
	}
	st, err := attest.RebuildVerdict(attest.VerdictInfo{
		Subject:           attest.Subject{Name: subject, Digest: out.Digest},
		RebuiltDigest:     out.RebuiltDigest,
		RebuilderID:       o.rebuilderID,
		Rebuilder:         attestBuilder(out.Rebuilder),
		Variations:        out.Variations,
		Provenance:        out.verified.Statement,
		ProvenancePayload: prov.Payload,
		ProvenanceSigner:  out.verified.Identity,
		Checkout: verify.SourceCheckout{
			Kind: out.Source.Kind, Repository: out.Source.Repository, Commit: out.Source.Commit,
			Tree: out.Source.Tree, ContextDigest: out.inputs.Source.Digest,
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
	signer, err := o.sign.signer(c)
	if err != nil {
		return nil, err
	}
	b, err := signer.SignStatement(c.Context, statement)
	if err != nil {
		return nil, fmt.Errorf("signing the verdict: %w", err)
	}
	if info, err := verify.Describe(b); err == nil {
		v.Identity = identityString(info.Signer)
	}
	data, err := protojson.Marshal(b.Bundle)
	if err != nil {
		return nil, fmt.Errorf("encoding the verdict: %w", err)
	}
	if o.verdict != "" {
		if err := fsatomic.WriteFile(o.verdict, data, 0o644); err != nil {
			return nil, err
		}
		v.Files = append(v.Files, o.verdict)
	}
	if _, isLayout := o.imageSource(); isLayout {
		path, err := verify.WriteVerdict(o.image, b)
		if err != nil {
			return nil, err
		}
		v.Files = append(v.Files, path)
	}
	if o.pushVerdict {
		ref, err := name.NewDigest(ev.where, name.StrictValidation)
		if err != nil {
			return nil, err
		}
		art := distribute.Artifact{
			ArtifactType: verify.BundleArtifactType,
			Data:         data,
			Annotations:  map[string]string{verify.AnnotationBundleContent: verify.ContentDSSE, verify.AnnotationPredicateType: verify.PredicateRebuildVerdict},
		}
		if v.Push, err = distribute.Attach(c.Context, ref, []distribute.Artifact{art}, o.sign.registry.options()...); err != nil {
			return nil, distributeError(err)
		}
	}
	return v, nil
}

// imageSource says whether IMAGE is an OCI layout directory.
func (o *rebuildOptions) imageSource() (string, bool) {
	if o.image == "" {
		return "", false
	}
	fi, err := os.Stat(o.image)
	return o.image, err == nil && fi.IsDir()
}

// auditError gives the audit package's refusals exit code 4.
func auditError(err error) error {
	if errors.Is(err, audit.ErrRefused) {
		return refused(err)
	}
	return err
}

func writeAuditResult(w io.Writer, format string, out *auditOutput) error {
	if format == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "image\t%s\n", out.Image)
	if out.ResolvedFrom != "" {
		fmt.Fprintf(tw, "resolved from\t%s\n", out.ResolvedFrom)
	}
	fmt.Fprintf(tw, "provenance\tverified, signed by %s, builder %s\n", out.Provenance.Signer, out.Provenance.BuilderID)
	switch {
	case out.Source.Repository != "":
		fmt.Fprintf(tw, "source\tcommit %s, cloned from %s\n", out.Source.Commit, out.Source.Repository)
	case out.Source.Commit != "":
		fmt.Fprintf(tw, "source\tcommit %s, checkout %s\n", out.Source.Commit, out.Source.Dir)
	default:
		fmt.Fprintf(tw, "source\ttree %s\n", out.Source.Dir)
	}
	fmt.Fprintf(tw, "digest\t%s\n", out.Digest)
	fmt.Fprintf(tw, "rebuilt digest\t%s\n", out.RebuiltDigest)
	fmt.Fprintf(tw, "reproduction\t%s\n", out.Reproduction)
	fmt.Fprintf(tw, "oci-layout\t%s\n", out.OCILayout)
	fmt.Fprintf(tw, "rebuilder\t%s (buildkit %s, %s)\n", out.RebuilderID, out.Rebuilder.BuildKitVersion, out.Rebuilder.Runc)
	for i, v := range out.Variations {
		label := ""
		if i == 0 {
			label = "variations"
		}
		fmt.Fprintf(tw, "%s\t%s\n", label, v)
	}
	fmt.Fprintf(tw, "strict variations\t%s\n", out.StrictVariations)
	if len(out.Warnings) > 0 {
		fmt.Fprintf(tw, "warnings\t%d (on stderr)\n", len(out.Warnings))
	}
	if v := out.Verdict; v != nil {
		if v.Method == "none" {
			fmt.Fprintf(tw, "verdict\tnot signed (use --sign keyless or --sign key=FILE)\n")
		} else {
			fmt.Fprintf(tw, "verdict\tsigned %s as %s\n", v.Method, v.Identity)
		}
		for _, f := range v.Files {
			fmt.Fprintf(tw, "\t%s\n", f)
		}
		if v.Push != nil {
			for _, r := range v.Push.Referrers {
				fmt.Fprintf(tw, "pushed\t%s@%s as referrer %s (%s)\n", v.Push.Repository, v.Push.Digest, r.Digest, v.Push.ReferrersMode)
			}
		}
	} else if !out.Reproducible {
		fmt.Fprintf(tw, "verdict\tnone: not reproduced\n")
	}
	fmt.Fprintf(tw, "duration\t%.1fs\n", out.DurationSeconds)
	return tw.Flush()
}
