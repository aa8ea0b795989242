// Package rebuild proves a build: the same request is built at the same
// time by two independent builders, the second under the variations real
// builders differ in (a later start, another hostname, ulimit, CPU count,
// snapshotter, daemon and state path), and the two manifest digests must
// be equal. When they are not, the error is ErrNotReproducible wrapped in
// a *DiffError whose report names the manifest, config and layer files
// that differ, and why where the shape of a difference shows it.
//
// BuildKit pins the umask (0022) and time zone (UTC) of every RUN step, so
// an image that only those would change reproduces on every BuildKit
// builder: they are not varied by default. WithStrictVariations varies
// them too, on a strict builder that takes the rebuild's place; only if it
// misses the digest does the rebuild run after it, and a match there
// proves that the pinned variations alone made the difference, reported
// as Warnings (StrictWarn) or as a *DiffError of class Pinned
// (StrictFail).
//
// The builders are separate values, normally on separate private daemons:
// rebuild never shares a daemon, a cache or a content store between them.
package rebuild
