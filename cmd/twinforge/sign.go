package main

import (
	"os"

	"github.com/urfave/cli/v2"

	"github.com/twinforge/twinforge/attest"
	"github.com/twinforge/twinforge/rebuild/pipeline"
)

// signOptions are the signing flags: how a build is attested and where it
// is published. check checks them into a pipeline.Publishing.
type signOptions struct {
	pipeline.PublishSettings
	sbom cli.StringSlice
	pub  *pipeline.Publishing
}

func (o *signOptions) flags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "sign", Value: "none", Usage: "attest and sign the image: keyless (Sigstore: OIDC token → Fulcio certificate, timestamp, log entry), key=`FILE` (a cosign or PEM private key), or none", Destination: &o.Sign},
		&cli.StringFlag{Name: "identity-token-file", Usage: "`FILE` holding the OIDC identity token for --sign keyless (default: $SIGSTORE_ID_TOKEN, else the GitHub Actions token endpoint)", EnvVars: []string{"TWINFORGE_IDENTITY_TOKEN_FILE"}, Destination: &o.IDTokenFile},
		&cli.StringFlag{Name: "identity-token", Usage: "OIDC identity token for --sign keyless; on the command line every user of the machine can read it (ps): prefer --identity-token-file or $SIGSTORE_ID_TOKEN", EnvVars: []string{"TWINFORGE_IDENTITY_TOKEN"}, Destination: &o.IDToken},
		&cli.StringFlag{Name: "fulcio-url", Value: "https://fulcio.sigstore.dev", Usage: "Fulcio certificate authority for --sign keyless", EnvVars: []string{"TWINFORGE_FULCIO_URL"}, Destination: &o.FulcioURL},
		&cli.StringFlag{Name: "tsa-url", Value: "https://timestamp.sigstore.dev/api/v1/timestamp", Usage: "RFC 3161 timestamp authority (empty: none)", EnvVars: []string{"TWINFORGE_TSA_TIMESTAMP_URL"}, Destination: &o.TSAURL},
		&cli.StringFlag{Name: "rekor-url", Usage: "Rekor v2 transparency log (empty: none)", EnvVars: []string{"TWINFORGE_REKOR_URL"}, Destination: &o.RekorURL},
		&cli.StringFlag{Name: "trusted-root", Usage: "Sigstore trusted root `FILE`: every bundle is verified against it before it is kept", EnvVars: []string{"TWINFORGE_TRUSTED_ROOT"}, Destination: &o.TrustedRootFile},
		&cli.StringFlag{Name: "builder-id", Value: attest.DefaultBuilderID, Usage: "the builder's identity recorded in the provenance (runDetails.builder.id), e.g. a reusable workflow's URI", Destination: &o.BuilderID},
		&cli.StringFlag{Name: "push", Usage: "after signing, push the image by digest to `REF` with its bundles as referrers; requires an explicit --sign", Destination: &o.Push},
		&cli.BoolFlag{Name: "insecure", Usage: "allow plain HTTP to a loopback --push registry only", Destination: &o.Registry.InsecureLoopbackUnsafe},
		&cli.StringFlag{Name: "ca-cert", Usage: "trust the CA certificates in PEM `FILE` for the --push registry", Destination: &o.Registry.CACertFile},
		&cli.StringSliceFlag{Name: "sbom", Usage: "also attest the image's SBOM in `FORMATS` (spdx: SPDX 2.3 JSON, cyclonedx: CycloneDX 1.6 JSON), written by twinforge from the built layout, signed like the provenance and pushed as referrers; requires --sign", Destination: &o.sbom},
	}
}

// check checks the signing flags and reads what they name.
func (o *signOptions) check(c *cli.Context) error {
	o.TSAURLGiven, o.SignGiven, o.KeyPassword = c.IsSet("tsa-url"), c.IsSet("sign"), []byte(os.Getenv("COSIGN_PASSWORD"))
	if o.IDToken != "" && o.IDTokenFile == "" && o.IDToken != os.Getenv("TWINFORGE_IDENTITY_TOKEN") {
		logger().Warn("--identity-token puts the token in the process arguments, which every user of this machine can read; prefer --identity-token-file FILE or $SIGSTORE_ID_TOKEN")
	}
	o.SBOM = o.sbom.Value()
	var err error
	o.pub, err = o.PublishSettings.Check()
	return usageError(err)
}
