// Package attest turns a twinforge build into signed, verifiable evidence.
//
// Provenance builds an in-toto Statement v1 whose predicate is SLSA
// Provenance v1 (build type https://twinforge.dev/buildtypes/dockerfile/v1,
// documented in buildtype.md) from a build's lock, its builder and its
// rebuild. A Signer wraps a statement in a DSSE envelope, or signs plain
// bytes (the image manifest), and returns a Sigstore bundle (media type
// application/vnd.dev.sigstore.bundle.v0.3+json): keyless with a Fulcio
// certificate for an OIDC identity, an RFC 3161 timestamp and a Rekor v2
// entry (NewKeylessSigner, IDTokenFromEnv), or with a long-lived key
// (NewKeySigner, cosign's key format included). Every Signer verifies the
// bundle it made before returning it; SignBuild makes both of a build's
// bundles at once.
//
// Provenance records a build from attest's own types: a Lock (ParseLock
// reads the provenance-relevant part of a twinforge.lock) and the Builder
// that built it, so the package depends on no build package (depcheck
// test). Verification, and the storage of bundles beside an OCI layout,
// live in the subpackage attest/verify, which an admission webhook imports
// alone.
//
// The package never prints and never exits; it reaches the network only
// through the services a caller names.
package attest
