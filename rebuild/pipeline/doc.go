// Package pipeline is twinforge's build as one library call: Run takes a
// locked build context to a proven, attested, signed and published image.
//
//  1. Lock: the lock file is loaded and the tree checked against it, and
//     everything the lock does not pin is refused, before a daemon starts
//     (package hermetic, builder.FromLock).
//  2. Build and prove: the build runs on a private buildkitd (or a remote
//     one) while a second private daemon, sharing nothing with the first,
//     rebuilds it under deliberate variations; the digests must be equal
//     (package rebuild). A difference is a *rebuild.DiffError and nothing
//     is signed or pushed.
//  3. Attest and sign: the orchestrator, never a build step, writes the
//     SLSA provenance of the build (package attest) and signs it and the
//     image manifest with the Signer given; the bundles are kept beside
//     the OCI layout. In GitHub Actions the source must be the run's own
//     commit of the run's repository.
//  4. Push: with Request.Push the image goes to its registry by digest,
//     with the bundles as OCI 1.1 referrers, read back, and only then
//     tagged (package distribute).
//
// The package never prints: BuildKit's progress goes to Request.Progress,
// and the result says what was built, proven, signed and pushed; Show
// writes it where its caller says, as `twinforge build` does.
package pipeline
