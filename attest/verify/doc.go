// Package verify decides whether an image's Sigstore evidence is to be
// trusted: it verifies the provenance and image bundles twinforge writes
// (package attest) against a Sigstore trusted root and a Policy, and says
// which check failed when it refuses.
//
// Verify checks each bundle's signature over what it carries, that it is
// about the image's digest, its certificate chain, transparency log entry
// and RFC 3161 timestamp against the trusted root, that its signer is one
// of the policy's identities, and then what the SLSA provenance says
// against the policy: source repository, builder, rebuild, age. Every
// refusal is a *VerificationError naming the failed check.
//
// LoadPolicy reads the policy format documented in attest/policy.md.
// LoadTrustedRoot reads a trusted_root.json; TrustedRootFromTUF fetches one
// through a TUF client that follows root rotations. ReadBundles reads the
// bundles stored beside an OCI layout; Describe shows what a bundle claims
// without trusting it.
//
// The package imports neither BuildKit nor the build packages (depcheck
// test), so that an admission webhook can use it.
package verify
