package regtest

import (
	"sync"
	"testing"
)

// FaultTally counts the faults a test injected into real components and
// how many the system survived: a fault is survived when the subtest that
// injected it passed every check of what must hold afterwards (an error
// that says what failed, no tag moved, no partial output, a state that
// the next run can use). The parent test logs the count when it ends.
type FaultTally struct {
	mu                 sync.Mutex
	injected, survived int
}

// NewFaultTally starts counting for t; the summary line is logged at the
// end of t.
func NewFaultTally(t testing.TB) *FaultTally {
	ft := &FaultTally{}
	t.Cleanup(func() {
		if t.Skipped() {
			return
		}
		ft.mu.Lock()
		defer ft.mu.Unlock()
		t.Logf("fault injection: %d faults injected, %d survived", ft.injected, ft.survived)
		if ft.injected == 0 {
			t.Error("fault injection: no fault was injected")
		}
	})
	return ft
}

// Record counts n faults injected in t (a subtest): survived if t passes.
// It fails t when n is 0, since a fault test that injected nothing proved
// nothing.
func (ft *FaultTally) Record(t testing.TB, n int) {
	t.Helper()
	if n == 0 {
		t.Error("no fault was injected")
	}
	t.Cleanup(func() {
		ft.mu.Lock()
		defer ft.mu.Unlock()
		ft.injected += n
		if !t.Failed() {
			ft.survived += n
		}
	})
}
