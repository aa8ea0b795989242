package main

import (
	"os"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/urfave/cli/v2"

	"github.com/twinforge/twinforge/attest"
	"github.com/twinforge/twinforge/attest/sbom"
	"github.com/twinforge/twinforge/distribute"
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
	attest.SignSettings
	method      string
	builderID   string
	push        name.Reference
	registry    []distribute.Option
	sbomFormats []string
}

func signOptionsFrom(c *cli.Context) (*signOptions, error) {
	o := &signOptions{builderID: c.String("builder-id"), SignSettings: attest.SignSettings{
		Sign: c.String("sign"), IDToken: c.String("identity-token"), IDTokenFile: c.String("identity-token-file"),
		FulcioURL: c.String("fulcio-url"), TSAURL: c.String("tsa-url"), TSAURLGiven: c.IsSet("tsa-url"), RekorURL: c.String("rekor-url"),
		TrustedRootFile: c.String("trusted-root"), KeyPassword: []byte(os.Getenv("COSIGN_PASSWORD")),
	}}
	if o.IDToken != "" && o.IDTokenFile == "" && o.IDToken != os.Getenv("TWINFORGE_IDENTITY_TOKEN") {
		logger().Warn("--identity-token puts the token in the process arguments, which every user of this machine can read; prefer --identity-token-file FILE or $SIGSTORE_ID_TOKEN")
	}
	var err error
	if o.method, err = o.Check(); err != nil {
		return nil, usageError(err)
	}
	if ref := c.String("push"); ref != "" {
		r, err := name.ParseReference(ref, name.StrictValidation)
		if err != nil {
			return nil, usageErrorf("--push %q: %v; give REGISTRY/REPOSITORY:TAG or @sha256:...", ref, err)
		}
		o.push = r
		if !c.IsSet("sign") {
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
	if o.registry, err = registryFrom(c); err != nil {
		return nil, err
	}
	return o, nil
}
