// Package audit rebuilds a published image from its provenance alone, as
// an independent auditor would, and says whether the rebuild lands on the
// published digest.
//
// FromProvenance reads a verified SLSA provenance statement of build type
// https://twinforge.dev/buildtypes/dockerfile/v1 (attest/buildtype.md) back
// into the inputs of the build: the source commit and tree, the context
// and Dockerfile, build arguments, target, platform, SOURCE_DATE_EPOCH, the
// base images by name and digest, URLs with their sha256 and git sources
// with their commits. OpenSource checks a local checkout against them (a
// clean git work tree at the recorded commit); CloneSource clones the
// recorded repository and checks out the commit. Inputs.Request turns the
// inputs and the checkout into the builder.Request of a hermetic build:
// base images only from OCI layouts holding the recorded digests (or
// fetched by digest), a source policy admitting only the recorded inputs,
// the context checked against the recorded context digest. Rebuild builds
// it and compares the digest; a difference is a *MismatchError wrapping
// rebuild.ErrNotReproducible with the image diff.
//
// Every refusal (a checkout at another commit, a dirty tree, a base image
// with another digest, a provenance this package cannot rebuild) wraps
// ErrRefused and happens before anything is built. The package neither
// verifies signatures (attest/verify does, first) nor signs verdicts
// (attest.RebuildVerdict does, after a match). It never prints on its
// own: Show writes a Run's outcome where its caller says.
package audit
