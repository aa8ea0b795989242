// Package kube runs twinforge's build workers on Kubernetes and lends them
// out one build at a time.
//
// Deploy puts a pool of BuildKit workers on a cluster the way docker
// buildx's kubernetes driver does, made stricter for builds that must be
// independent: every worker is a StatefulSet of one buildkitd pod with a
// certificate of its own (package isolation/workercert; the CA's key stays
// with the deployer), mutual TLS only, a private emptyDir state that no
// other worker shares, resource requests, a required pod anti-affinity so
// that Kubernetes places no two workers of a pool on one node, the
// loopback-only container network and no gateway frontend of twinforge's
// own daemons, and a NetworkPolicy that lets nothing out. Placement is
// Kubernetes' own: this package schedules nothing. DeploySettings are
// `twinforge workers deploy`'s, checked (Check) and deployed (Run) in one
// call; Cluster.Check checks the pool the other workers commands name.
// Their settings errors wrap ErrInvalidSettings.
//
// Acquire lends a worker to one build: a coordination.k8s.io Lease per
// worker is the lock (held while the build runs, renewed, released on
// Close and given up by a holder that died once it expires), and waiting
// builds queue in order, each behind a Lease ticket of its own, with
// their position reported while they wait. AcquirePair lends a build and a
// rebuild worker on two different nodes at once, so that two runs never
// each hold half a pair. Dial reaches a lent worker through the API server
// (a client-go port forward to its pod) and checks, over mutual TLS, that
// it presents the certificate of the worker it was lent: the daemon it
// returns is an isolation.Daemon whose Info names the cluster, the node,
// the pod and the worker's identity.
package kube
