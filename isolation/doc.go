// Package isolation gives each twinforge build a BuildKit daemon of its own.
//
// Start launches a private buildkitd: its own root (snapshots, content store
// and cache), its own unix socket, its own configuration file (so nothing in
// /etc/buildkit applies), the OCI worker with runc, no entitlements and no
// garbage collection racing the build, no gateway frontend, and a CNI
// network of the loopback plugin alone for every container it runs, so
// that no container (a RUN step, a frontend, a container of the gateway
// API) reaches the build host's network. Its environment is an allow-list
// (PATH, HOME, its own TMPDIR), never the tokens and passwords of
// twinforge's. Nothing is shared with any other daemon. Close stops it gracefully, unmounts whatever it left mounted and
// removes its state unless it was asked to keep it. State left behind by a
// run that crashed is found and removed by the next Start.
//
// WithCache keeps a daemon's BuildKit root between runs instead, one per
// daemon name (side: build, rebuild) and scope (tenant), never shared:
// checked blob by blob before each start, discarded when corrupted (the
// daemon then starts cold and Info().Cache says why), held by one daemon
// at a time. Info().Cache records whether the daemon started cold or warm.
// WithOwnFileSystem mounts the daemon's root on a file system of its own
// while it runs (a tmpfs, or an XFS image holding its cache), which a
// rebuild uses to vary the file system and keep native snapshots cheap.
//
// Remote connects to an existing buildkitd (a worker on another machine,
// or on Kubernetes, see package isolation/kube) over mutual TLS instead; it
// satisfies the same Daemon interface. It pins the worker's certificate and
// its identity (package isolation/workercert issues them), and refuses a
// daemon whose workers report the host's network, grant insecure
// entitlements or run steps without a process sandbox. CheckSeparate tells
// whether two daemons are known to be on separate machines, which a build
// and the rebuild that vouches for it must be.
package isolation
