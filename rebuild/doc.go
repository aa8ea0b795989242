// Package rebuild proves a build: the same request is built at the same
// time by two independent builders, the second under deliberate variations
// (a later start, another hostname, ulimit, CPU count, snapshotter, umask
// and time zone), and the two manifest digests must be equal. When they are
// not, the error is ErrNotReproducible wrapped in a *DiffError whose report
// names the manifest, config and layer files that differ.
//
// The builders are separate values, normally on separate private daemons:
// rebuild never shares a daemon, a cache or a content store between them.
package rebuild
