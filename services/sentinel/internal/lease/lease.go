// Package lease makes sure only one sentinel works on a release at a time
// (say a Job pod that is being replaced while its predecessor still runs, or
// an operator's manual run): the work runs only while this process holds a
// coordination.k8s.io Lease, and stops when it loses it.
package lease

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	typedcoordinationv1 "k8s.io/client-go/kubernetes/typed/coordination/v1"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

// Lease timings: a killed sentinel's successor takes over within
// DefaultLeaseDuration; an API outage shorter than DefaultRenewDeadline goes
// unnoticed, a longer one restarts the work.
const (
	DefaultLeaseDuration = 20 * time.Second
	DefaultRenewDeadline = 15 * time.Second
	DefaultRetryPeriod   = 3 * time.Second
)

// ErrLost is returned when the Lease was lost while the work still ran.
var ErrLost = errors.New("lost the sentinel lease to another holder")

// ErrRemovedByWork is returned by work that deleted the Lease itself (or the
// rights to it), as the sentinel does when it removes its own objects last.
// Run then does not try to release the Lease and returns nil.
var ErrRemovedByWork = errors.New("the lease was removed by the work")

// releaseTimeout bounds the release of the Lease after work returns.
const releaseTimeout = 5 * time.Second

// Config describes the Lease.
type Config struct {
	// Client reads and writes the Lease.
	Client    typedcoordinationv1.CoordinationV1Interface
	Namespace string
	Name      string
	Identity  string
	Logger    *zap.Logger
	// Durations; zero values take the defaults above.
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
}

// Run blocks until the Lease is held, then runs work with a context that is
// cancelled if the Lease is lost, and returns work's error. It releases the
// Lease when work returns (unless work returns ErrRemovedByWork), so a
// successor need not wait for it to expire. A Lease lost while work runs (say the API server
// was unreachable for longer than the renew deadline) is acquired again and
// work starts over: it must be safe to repeat, as the sentinel's is.
func Run(ctx context.Context, cfg Config, work func(ctx context.Context) error) error {
	for {
		err := runOnce(ctx, cfg, work)
		if !errors.Is(err, ErrLost) || ctx.Err() != nil {
			return err
		}
		if cfg.Logger != nil {
			cfg.Logger.Warn("lost the sentinel lease (API server unreachable?); acquiring it again and starting over")
		}
	}
}

func runOnce(ctx context.Context, cfg Config, work func(ctx context.Context) error) error {
	if cfg.Client == nil || cfg.Namespace == "" || cfg.Name == "" || cfg.Identity == "" || cfg.Logger == nil {
		return errors.New("lease: client, namespace, name (--lease), identity (--identity) and logger are required")
	}
	if cfg.LeaseDuration == 0 {
		cfg.LeaseDuration = DefaultLeaseDuration
	}
	if cfg.RenewDeadline == 0 {
		cfg.RenewDeadline = DefaultRenewDeadline
	}
	if cfg.RetryPeriod == 0 {
		cfg.RetryPeriod = DefaultRetryPeriod
	}
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metaFor(cfg),
		Client:     cfg.Client,
		LockConfig: resourcelock.ResourceLockConfig{Identity: cfg.Identity},
	}
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		once     sync.Once
		workErr  error
		workDone = make(chan struct{})
		started  bool
		mu       sync.Mutex
	)
	le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock:          lock,
		LeaseDuration: cfg.LeaseDuration,
		RenewDeadline: cfg.RenewDeadline,
		RetryPeriod:   cfg.RetryPeriod,
		// Released by hand below: client-go's release would fail, and log
		// an error, once the work has deleted the Lease and its own RBAC.
		ReleaseOnCancel: false,
		Name:            cfg.Name,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(wctx context.Context) {
				once.Do(func() {
					mu.Lock()
					started = true
					mu.Unlock()
					cfg.Logger.Info("holding the sentinel lease", zap.String("lease", cfg.Namespace+"/"+cfg.Name))
					err := work(wctx)
					mu.Lock()
					workErr = err
					mu.Unlock()
					close(workDone)
					cancel()
				})
			},
			OnStoppedLeading: func() {},
			OnNewLeader: func(id string) {
				if id != cfg.Identity {
					cfg.Logger.Info("another sentinel holds the lease; waiting", zap.String("holder", id))
				}
			},
		},
	})
	if err != nil {
		return fmt.Errorf("failed to set up the lease: %w", err)
	}
	le.Run(lctx)
	mu.Lock()
	wasStarted := started
	mu.Unlock()
	if !wasStarted {
		return ctx.Err()
	}
	<-workDone
	mu.Lock()
	defer mu.Unlock()
	if errors.Is(workErr, ErrRemovedByWork) {
		return nil
	}
	if workErr != nil && errors.Is(workErr, context.Canceled) && ctx.Err() == nil {
		return ErrLost
	}
	rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
	defer rcancel()
	if err := release(rctx, lock, cfg.Identity); err != nil {
		// Harmless: a successor waits at most one lease duration.
		cfg.Logger.Warn("failed to release the sentinel lease", zap.Error(err))
	}
	return workErr
}

// release gives up the Lease if this process still holds it, the way
// client-go does: an empty holder and a one-second duration.
func release(ctx context.Context, lock *resourcelock.LeaseLock, identity string) error {
	rec, _, err := lock.Get(ctx)
	if err != nil {
		return fmt.Errorf("failed to read lease %s: %w", lock.Describe(), err)
	}
	if rec.HolderIdentity != identity {
		return nil
	}
	now := metav1.NewTime(time.Now())
	if err := lock.Update(ctx, resourcelock.LeaderElectionRecord{
		LeaderTransitions:    rec.LeaderTransitions,
		LeaseDurationSeconds: 1,
		RenewTime:            now,
		AcquireTime:          now,
	}); err != nil {
		return fmt.Errorf("failed to release lease %s: %w", lock.Describe(), err)
	}
	return nil
}
