package isolation

import (
	"errors"
	"fmt"
)

// ErrSameMachine is returned by CheckSeparate for two daemons that are, or
// may be, one machine.
var ErrSameMachine = errors.New("build and rebuild workers are not on separate machines")

// CheckSeparate reports whether the daemons a and b (the build's and the
// rebuild's) are known to run on separate machines, so that a digest they
// both give is not one machine's word. It refuses one daemon reached at
// two addresses (one worker ID), one worker certificate presented by both,
// and two workers on one node (the Kubernetes node of one cluster, or the
// host name the daemons report). A daemon twinforge started itself runs
// on this machine, so two of them are never separate; a remote daemon
// that reports no host name cannot be placed and is refused too.
func CheckSeparate(a, b Info) error {
	fail := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrSameMachine, fmt.Sprintf(format, args...))
	}
	switch {
	case !a.Remote && !b.Remote:
		return fail("both are private daemons of this machine; give remote workers (--builder and --rebuilder, or --workers)")
	case a.WorkerID != "" && a.WorkerID == b.WorkerID:
		return fail("%s and %s are one daemon (worker %s)", a.Address, b.Address, a.WorkerID)
	case a.Certificate != "" && a.Certificate == b.Certificate:
		return fail("%s and %s present one certificate (%s): they are one worker", a.Address, b.Address, a.Identity)
	case a.Remote && a.Node == "" || b.Remote && b.Node == "":
		return fail("a remote worker reports no host name, so its machine is unknown")
	case a.Node == b.Node && a.Cluster == b.Cluster:
		where := "host " + a.Node
		if a.Cluster != "" {
			where = fmt.Sprintf("node %s of cluster %s", a.Node, a.Cluster)
		}
		return fail("both run on %s", where)
	}
	return nil
}
