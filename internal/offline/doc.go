// Package offline makes the examples' base images without a registry: it
// packs host files (Debian's static busybox, a Go toolchain) into OCI image
// layouts with go-containerregistry, byte for byte the same on every run:
// sorted entries, root ownership, fixed modes and timestamps, and a
// deterministic index.json.
package offline
