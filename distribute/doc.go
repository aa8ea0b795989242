// Package distribute publishes twinforge's images: it pushes an image from an
// OCI layout by digest together with its attestations, replicates an image
// and everything attached to it to further registries, and reads back every
// copy before it counts.
//
// Push writes the blobs, then the image manifest by digest, then each
// [Artifact] (a Sigstore bundle, an SBOM, ...) as an OCI 1.1 referrer
// manifest whose subject is the image. It then reads everything back from the
// registry, comparing digests byte for byte, and only then moves the tag: a
// tag never points at a manifest that is missing or differs from what was
// built.
//
// Replicate copies an image by digest, with all its referrers, from one
// repository to many, concurrently. Blobs a destination already holds are not
// sent again, blobs on the same registry are mounted instead of uploaded, and
// every destination is read back and compared with the source. One failing
// destination never stops the others; running Replicate again finishes what
// an interrupted run left undone.
//
// PushFiles and PullFiles carry a set of named files as one OCI artifact
// (a layer per file, titled by name), for what must travel with images
// without being attached to one: the release index of package
// distribute/release.
//
// Registries without the OCI 1.1 referrers API (GET /v2/<name>/referrers/<digest>
// answers 404) get the referrers tag schema of the OCI distribution spec
// instead: an image index tagged sha256-<hex> that lists the referrers.
// go-containerregistry maintains that index whenever it writes a manifest with
// a subject; this package detects which of the two a registry uses, reports
// it and verifies the list either way.
//
// Security defaults: registries are reached over HTTPS with the system's
// roots ([WithCACert] adds one); plain HTTP is refused unless
// [WithInsecureLoopbackUnsafe] is given, and even then only for loopback
// hosts. Credentials come from the Docker config and its credential helpers
// ([authn.DefaultKeychain]) unless [WithKeychain] says otherwise.
//
// The package never prints: progress goes to the channel given to
// [WithProgress].
package distribute
