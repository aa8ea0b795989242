package isolation

import (
	"context"
	"errors"
	"sync"

	"github.com/moby/buildkit/client"
)

// onDemand is a daemon that is started by the first call that needs it.
type onDemand struct {
	start func(context.Context) (Daemon, error)

	mu     sync.Mutex
	d      Daemon
	err    error
	closed bool
}

var _ Daemon = (*onDemand)(nil)

// OnDemand returns a Daemon that calls start on its first Client or Check
// and forwards to the daemon start returned. A daemon that is never needed
// is never started: a build that only sometimes needs a second opinion
// pays for it only then. A failed start is returned by every later call.
// Close stops the daemon if it was started.
func OnDemand(start func(context.Context) (Daemon, error)) Daemon {
	return &onDemand{start: start}
}

var errClosed = errors.New("daemon closed before it was needed")

func (o *onDemand) get(ctx context.Context) (Daemon, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	switch {
	case o.closed:
		return nil, errClosed
	case o.d == nil && o.err == nil:
		o.d, o.err = o.start(ctx)
	}
	return o.d, o.err
}

// started is the daemon if it runs.
func (o *onDemand) started() Daemon {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.d
}

func (o *onDemand) Addr() string {
	if d := o.started(); d != nil {
		return d.Addr()
	}
	return ""
}

func (o *onDemand) Info() Info {
	if d := o.started(); d != nil {
		return d.Info()
	}
	return Info{}
}

func (o *onDemand) Client(ctx context.Context) (*client.Client, error) {
	d, err := o.get(ctx)
	if err != nil {
		return nil, err
	}
	return d.Client(ctx)
}

func (o *onDemand) Check(ctx context.Context) error {
	d, err := o.get(ctx)
	if err != nil {
		return err
	}
	return d.Check(ctx)
}

func (o *onDemand) Close() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.closed = true
	if o.d == nil {
		return nil
	}
	return o.d.Close()
}
