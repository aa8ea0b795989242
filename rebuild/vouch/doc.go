// Package vouch runs the rebuild side of a build in a process of its own,
// which signs its own verdict.
//
// The rebuild that proves a build must not take the builder's word for
// anything, and must not be able to sign as the builder. Start runs it as
// a separate twinforge process (the hidden `twinforge rebuilder` command)
// that is given only what the rebuild side needs: the rebuild worker's
// address and the client certificate it dials it with (or the pool and
// name of a lent worker), its own state directory, and the paths of its
// own signing credentials. The builder's key, password and identity token
// are never passed to it: not in its arguments, its environment (an
// allow-list: PATH, HOME, TMPDIR), its open files or the messages it gets.
//
// The process reads the lock and the build context itself, checks the
// tree against the lock, builds on its worker with its own connection
// (checking the worker's certificate identity, and refusing a worker on
// the build's machine), and reports the digest (Process.Build; a Process
// is the rebuild's builder.Builder). Once the builder signed the
// provenance, Process.Vouch hands it over: the process verifies its
// signature, checks that it is about the digest it rebuilt and records
// the inputs it rebuilt from, and only then signs an in-toto rebuild
// verdict (attest/verdict.md) with its own identity and returns the
// bundle. A rebuild that gave another digest, a provenance that does not
// verify or describes other inputs, gets no verdict.
//
// What "never sees" does not cover: a process of the same user on the
// same machine could read the builder's files if it went looking. The
// boundary that matters is the machine: run the builder and the rebuild
// worker on separate ones (workers on two nodes), keep each side's key on
// the side that uses it, and name only the rebuilder's identity in
// requireReproduced (docs/workers.md).
package vouch
