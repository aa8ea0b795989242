// Package sbom writes the software bill of materials of a built image: the
// orchestrator, not a build step, reads the image from its OCI layout,
// catalogues the packages in it and encodes them as SPDX 2.3 JSON
// (github.com/spdx/tools-golang) and CycloneDX 1.6 JSON
// (github.com/CycloneDX/cyclonedx-go), each wrapped in an in-toto
// Statement about the image digest, to be signed like the provenance and
// pushed as a referrer.
//
// The cataloguer reads the image's filesystem (layers applied in order,
// whiteouts honoured) and finds what it can prove exactly:
//
//   - Go binaries: the main module and every dependency module the Go
//     linker recorded (runtime/debug build info), with their h1 sums;
//   - Debian packages, from var/lib/dpkg/status (and status.d/);
//   - Alpine packages, from lib/apk/db/installed.
//
// Each package has its package URL (pkg:golang, pkg:deb, pkg:apk) and the
// file it was found in. The output is deterministic: the same image gives
// the same bytes (the creation time is the image's, or SOURCE_DATE_EPOCH's).
// Packages parses either format back into package URLs, for policies.
//
// The package never prints and reaches no network.
package sbom
