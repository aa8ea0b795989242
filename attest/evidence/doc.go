// Package evidence finds an image's twinforge evidence and verifies it: the
// image manifest and the Sigstore bundles about it (provenance, image
// signatures, rebuild verdicts, SBOM attestations), wherever they are
// stored.
//
// Layout reads an OCI image layout with the bundles twinforge build wrote
// beside it (<layout>/attestations/, verify.WriteBundles and
// verify.WriteVerdict). Registry reads an image from its registry, a tag
// resolved to a digest first, with the bundles attached to it as OCI 1.1
// referrers (the referrers API or the referrers tag schema), through
// package distribute. Open picks one of the two for a name as a user types
// it. Bundles are sorted by what they hold, read from the bundle itself:
// referrer annotations are not signed. Nothing found is trusted yet.
//
// Evidence.Verify then tries each pair of a provenance bundle and an image
// bundle with verify.Verify, rebuild verdicts and SBOMs included, bundles
// signed by the policy's identities first, and returns the
// first pair that verifies, or the first refusal. `twinforge verify`,
// `twinforge rebuild` (package rebuild/audit) and the admission webhook all
// decide through it.
//
// Check is the whole of `twinforge verify`: the policy and trusted root
// loaded from files, the release index consulted, the evidence verified;
// its Report and Refusal are what the command prints.
//
// The package imports neither BuildKit nor the build packages, so that the
// admission webhook can use it (depcheck test).
package evidence
