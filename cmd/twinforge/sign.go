package main

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/urfave/cli/v2"

	"github.com/twinforge/twinforge/attest"
	"github.com/twinforge/twinforge/attest/github"
	"github.com/twinforge/twinforge/attest/sbom"
	"github.com/twinforge/twinforge/attest/verify"
	"github.com/twinforge/twinforge/builder"
	"github.com/twinforge/twinforge/distribute"
	"github.com/twinforge/twinforge/hermetic"
	"github.com/twinforge/twinforge/isolation"
	"github.com/twinforge/twinforge/rebuild"
)

// signFlags choose how a build is attested and where it is published.
func signFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "sign", Value: "none", Usage: "attest and sign the image: keyless (Sigstore: OIDC token → Fulcio certificate, timestamp, log entry), key=`FILE` (a cosign or PEM private key), or none"},
		&cli.StringFlag{Name: "identity-token-file", Usage: "`FILE` holding the OIDC identity token for --sign keyless (default: $SIGSTORE_ID_TOKEN, else the GitHub Actions token endpoint)", EnvVars: []string{"TWINFORGE_IDENTITY_TOKEN_FILE"}},
		&cli.StringFlag{Name: "identity-token", Usage: "OIDC identity token for --sign keyless; on the command line every user of the machine can read it (ps): prefer --identity-token-file or $SIGSTORE_ID_TOKEN", EnvVars: []string{"TWINFORGE_IDENTITY_TOKEN"}},
		&cli.StringFlag{Name: "fulcio-url", Value: "https://fulcio.sigstore.dev", Usage: "Fulcio certificate authority for --sign keyless", EnvVars: []string{"TWINFORGE_FULCIO_URL"}},
		&cli.StringFlag{Name: "tsa-url", Value: "https://timestamp.sigstore.dev/api/v1/timestamp", Usage: "RFC 3161 timestamp authority (empty: none)", EnvVars: []string{"TWINFORGE_TSA_TIMESTAMP_URL"}},
		&cli.StringFlag{Name: "rekor-url", Usage: "Rekor v2 transparency log (empty: none)", EnvVars: []string{"TWINFORGE_REKOR_URL"}},
		&cli.StringFlag{Name: "trusted-root", Usage: "Sigstore trusted root `FILE`: every bundle is verified against it before it is kept", EnvVars: []string{"TWINFORGE_TRUSTED_ROOT"}},
		&cli.StringFlag{Name: "builder-id", Value: attest.DefaultBuilderID, Usage: "the builder's identity recorded in the provenance (runDetails.builder.id), e.g. a reusable workflow's URI"},
		&cli.StringFlag{Name: "push", Usage: "after signing, push the image by digest to `REF` with its bundles as referrers; requires an explicit --sign"},
		&cli.BoolFlag{Name: "insecure", Usage: "allow plain HTTP to a loopback --push registry only"},
		&cli.StringFlag{Name: "ca-cert", Usage: "trust the CA certificates in PEM `FILE` for the --push registry"},
		&cli.StringSliceFlag{Name: "sbom", Usage: "also attest the image's SBOM in `FORMATS` (spdx: SPDX 2.3 JSON, cyclonedx: CycloneDX 1.6 JSON), written by twinforge from the built layout, signed like the provenance and pushed as referrers; requires --sign"},
	}
}

type signOptions struct {
	method, keyPath            string
	token, tokenFile           string
	fulcio, tsa, rekor         string
	trustedRoot                string
	builderID                  string
	push                       name.Reference
	registry                   registryConfig
	explicitSign, explicitPush bool
	sbomFormats                []string
}

func signOptionsFrom(c *cli.Context) (*signOptions, error) {
	o := &signOptions{
		token: c.String("identity-token"), tokenFile: c.String("identity-token-file"), fulcio: c.String("fulcio-url"), tsa: c.String("tsa-url"),
		rekor: c.String("rekor-url"), trustedRoot: c.String("trusted-root"), builderID: c.String("builder-id"),
		explicitSign: c.IsSet("sign"),
	}
	if o.token != "" && o.tokenFile != "" {
		return nil, usageErrorf("give --identity-token-file or --identity-token, not both")
	}
	if o.token != "" && o.token != os.Getenv("TWINFORGE_IDENTITY_TOKEN") {
		logger().Warn("--identity-token puts the token in the process arguments, which every user of this machine can read; prefer --identity-token-file FILE or $SIGSTORE_ID_TOKEN")
	}
	switch sign := c.String("sign"); {
	case sign == "keyless" || sign == "none":
		o.method = sign
	case strings.HasPrefix(sign, "key="):
		o.method, o.keyPath = "key", strings.TrimPrefix(sign, "key=")
		if _, err := os.Stat(o.keyPath); err != nil {
			return nil, usageErrorf("--sign key=%s: %v", o.keyPath, err)
		}
	default:
		return nil, usageErrorf("--sign %q: use keyless, key=FILE or none", sign)
	}
	if ref := c.String("push"); ref != "" {
		r, err := name.ParseReference(ref, name.StrictValidation)
		if err != nil {
			return nil, usageErrorf("--push %q: %v; give REGISTRY/REPOSITORY:TAG or @sha256:...", ref, err)
		}
		o.push = r
		if !o.explicitSign {
			return nil, usageErrorf("--push publishes only what was signed: give --sign keyless, --sign key=FILE, or --sign none to push unsigned on purpose")
		}
	}
	for _, f := range c.StringSlice("sbom") {
		if _, err := sbom.PredicateType(f); err != nil {
			return nil, usageErrorf("--sbom: %v", err)
		}
		o.sbomFormats = append(o.sbomFormats, f)
	}
	if len(o.sbomFormats) > 0 && o.method == "none" {
		return nil, usageErrorf("--sbom attests the SBOM: give --sign keyless or --sign key=FILE")
	}
	var err error
	if o.registry, err = registryConfigFrom(c); err != nil {
		return nil, err
	}
	return o, nil
}

// signature is what --output reports about the attestation step.
type signature struct {
	Method   string   `json:"method"`
	Identity string   `json:"identity,omitempty"`
	Bundles  []string `json:"bundles,omitempty"`
	// SBOMs are the signed SBOM attestations (--sbom).
	SBOMs []string `json:"sboms,omitempty"`
}

// attestAndPush writes the provenance of a proven build, signs it and the
// manifest, keeps the bundles beside the layout and, with --push, publishes
// image and bundles. Signing happens only after the digest was proven (or
// the proof was skipped on purpose, which the provenance then says).
func attestAndPush(c *cli.Context, o *signOptions, l *hermetic.Lock, contextDir, tag string, res *builder.Result, verified *rebuild.Result, started time.Time) (*signature, *distribute.PushResult, error) {
	ctx := c.Context
	sig := &signature{Method: o.method}
	if o.method != "none" {
		// The provenance names the commit that was built, not the one the
		// lock was made at; the lock check proved their contents equal.
		src, err := hermetic.CurrentSource(ctx, contextDir, l.Source.Digest)
		if err != nil {
			return nil, nil, err
		}
		gh, inActions := github.FromEnv(os.Getenv)
		if inActions {
			if err := checkGitHubSource(src, gh); err != nil {
				return nil, nil, refused(err)
			}
			src.Repository = gh.RepositoryURL()
		}
		locked := *l
		locked.Source = src
		lockData, err := locked.Marshal()
		if err != nil {
			return nil, nil, err
		}
		provLock, err := attest.ParseLock(lockData)
		if err != nil {
			return nil, nil, err
		}
		subject := tag
		if subject == "" && o.push != nil {
			subject = o.push.Context().Name()
		}
		if subject == "" {
			subject = filepath.Base(res.OCILayout)
		}
		info := attest.BuildInfo{
			Subject:      attest.Subject{Name: subject, Digest: res.Digest},
			Lock:         provLock,
			ContextPath:  gitPrefix(contextDir),
			BuilderID:    o.builderID,
			Build:        attestBuilder(res.Builder),
			InvocationID: invocationID(),
			StartedOn:    started,
			FinishedOn:   time.Now(),
		}
		if inActions {
			info.GitHub = gh.Map()
			info.InvocationID = gh.InvocationID()
		}
		if verified != nil {
			var vs []string
			for _, v := range verified.Variations {
				vs = append(vs, v.String())
			}
			var warnings []string
			for _, w := range verified.Warnings {
				warnings = append(warnings, w.String())
			}
			info.Rebuild = &attest.Rebuild{Digest: verified.Rebuild.Digest, Builder: attestBuilder(verified.Rebuild.Builder), RebuilderID: o.builderID + "#rebuild", Variations: vs,
				StrictVariations: string(verified.Strictness), Decided: verified.Decided(), Warned: verified.Warned(), Warnings: warnings}
		}
		st, err := attest.Provenance(info)
		if err != nil {
			return nil, nil, fmt.Errorf("writing provenance: %w", err)
		}
		statement, err := attest.MarshalStatement(st)
		if err != nil {
			return nil, nil, err
		}
		manifest, err := verify.ReadManifest(res.OCILayout, res.Digest)
		if err != nil {
			return nil, nil, err
		}
		signer, err := o.signer(c)
		if err != nil {
			return nil, nil, err
		}
		bundles, err := attest.SignBuild(ctx, signer, statement, manifest)
		if err != nil {
			return nil, nil, fmt.Errorf("signing: %w", err)
		}
		if err := verify.WriteBundles(res.OCILayout, bundles); err != nil {
			return nil, nil, err
		}
		if len(o.sbomFormats) > 0 {
			img, err := distribute.FromLayout(res.OCILayout)
			if err != nil {
				return nil, nil, distributeError(err)
			}
			sboms, err := attest.SignSBOMs(ctx, signer, img, info.Subject, time.Unix(l.SourceDateEpoch, 0), o.sbomFormats)
			if err != nil {
				return nil, nil, err
			}
			if sig.SBOMs, err = attest.WriteSBOMBundles(res.OCILayout, sboms); err != nil {
				return nil, nil, err
			}
		}
		if info, err := verify.Describe(bundles.Provenance); err == nil {
			sig.Identity = identityString(info.Signer)
		}
		sig.Bundles = []string{
			filepath.Join(res.OCILayout, verify.AttestationsDir, "provenance.sigstore.json"),
			filepath.Join(res.OCILayout, verify.AttestationsDir, "image.sigstore.json"),
		}
	}
	if o.push == nil {
		return sig, nil, nil
	}
	img, err := distribute.FromLayout(res.OCILayout)
	if err != nil {
		return sig, nil, distributeError(err)
	}
	var artifacts []distribute.Artifact
	for i, path := range sig.Bundles {
		data, err := os.ReadFile(path)
		if err != nil {
			return sig, nil, err
		}
		ann := map[string]string{verify.AnnotationBundleContent: verify.ContentMessageSignature}
		if i == 0 {
			ann = map[string]string{verify.AnnotationBundleContent: verify.ContentDSSE, verify.AnnotationPredicateType: verify.PredicateSLSAProvenance1}
		}
		artifacts = append(artifacts, distribute.Artifact{ArtifactType: verify.BundleArtifactType, Data: data, Annotations: ann})
	}
	for _, path := range sig.SBOMs {
		data, err := os.ReadFile(path)
		if err != nil {
			return sig, nil, err
		}
		b, err := verify.ParseBundle(data)
		if err != nil {
			return sig, nil, err
		}
		pt := ""
		if info, err := verify.Describe(b); err == nil && info.Statement != nil {
			pt = info.Statement.GetPredicateType()
		}
		artifacts = append(artifacts, distribute.Artifact{ArtifactType: verify.BundleArtifactType, Data: data,
			Annotations: map[string]string{verify.AnnotationBundleContent: verify.ContentDSSE, verify.AnnotationPredicateType: pt}})
	}
	pushed, err := distribute.Push(ctx, img, o.push, artifacts, o.registry.options()...)
	if err != nil {
		return sig, nil, distributeError(err)
	}
	return sig, pushed, nil
}

// String names a signer identity for output.
func (s *signature) String() string {
	if s.Method == "none" {
		return "none (unsigned: use --sign keyless or --sign key=FILE)"
	}
	return s.Method + " as " + s.Identity
}

func (o *signOptions) signer(c *cli.Context) (attest.Signer, error) {
	var opts []attest.Option
	if o.trustedRoot != "" {
		tr, err := verify.LoadTrustedRoot(o.trustedRoot)
		if err != nil {
			return nil, err
		}
		opts = append(opts, attest.WithTrustedRoot(tr))
	}
	if o.method == "key" {
		if o.tsa != "" && c.IsSet("tsa-url") {
			opts = append(opts, attest.WithTimestampAuthority(o.tsa))
		}
		if o.rekor != "" {
			opts = append(opts, attest.WithTransparencyLog(o.rekor))
		}
		return attest.NewKeySigner(o.keyPath, []byte(os.Getenv("COSIGN_PASSWORD")), opts...)
	}
	token, err := attest.IDTokenFromEnv(c.Context, attest.WithIdentityToken(o.token), attest.WithIdentityTokenFile(o.tokenFile))
	if err != nil {
		return nil, err
	}
	cfg := attest.KeylessConfig{FulcioURL: o.fulcio, TSAURL: o.tsa, RekorURL: o.rekor, IDToken: token}
	if o.trustedRoot != "" {
		tr, err := verify.LoadTrustedRoot(o.trustedRoot)
		if err != nil {
			return nil, err
		}
		cfg.TrustedRoot = tr
	}
	return attest.NewKeylessSigner(c.Context, cfg)
}

// gitPrefix is the context's path inside its git repository, "" outside.
func gitPrefix(dir string) string {
	out, err := exec.Command("git", "-C", dir, "rev-parse", "--show-prefix").Output()
	if err != nil {
		return ""
	}
	return strings.TrimSuffix(strings.TrimSpace(string(out)), "/")
}

func invocationID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return "urn:uuid:" + hex.EncodeToString(b)
}

func identityString(id verify.SignerIdentity) string {
	if id.PublicKey != "" {
		return "key " + id.PublicKey
	}
	return id.Subject + " (issuer " + id.Issuer + ")"
}

// checkGitHubSource refuses, in GitHub Actions, a source that is not the
// commit of the run's own repository: whoever calls a reusable workflow
// controls the lock file, and the provenance must not name a repository or
// commit the run did not build.
func checkGitHubSource(src hermetic.Source, gh *github.Context) error {
	if src.Kind != hermetic.SourceKindGit {
		return fmt.Errorf("in GitHub Actions the build context must be inside the checked-out repository %s", gh.Repository)
	}
	if gh.SHA != "" && src.Commit != gh.SHA {
		return fmt.Errorf("the checkout is at %s but the run is for %s (GITHUB_SHA): check out the run's commit", src.Commit, gh.SHA)
	}
	if src.Dirty {
		return fmt.Errorf("the checkout of %s has uncommitted changes: a build in GitHub Actions signs only committed source", gh.Repository)
	}
	if src.Repository != "" && !verify.SameRepository(src.Repository, gh.RepositoryURL()) {
		return fmt.Errorf("the checkout's origin %s is not the run's repository %s", src.Repository, gh.RepositoryURL())
	}
	return nil
}

func attestBuilder(i isolation.Info) attest.Builder {
	return attest.Builder{Remote: i.Remote, BuildKitVersion: i.BuildKitVersion, Runc: i.Runc, Snapshotter: i.Snapshotter, CPUSet: i.CPUSet}
}
