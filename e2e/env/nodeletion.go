package env

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/watch"
)

// transient are the kinds of a release whose objects come and go while an
// install runs (pods, the sentinel's Job and Lease): ExpectNothingDeleted
// does not watch them.
var transient = map[string]bool{"pods": true, "jobs": true, "leases": true}

// ExpectNothingDeleted watches the objects labelled as part of release that
// an install keeps (every kind ReleaseObjects knows but pods, Jobs and
// Leases) for window, and returns an error naming each one deleted or marked
// for deletion meanwhile. Call it once the system is in the state under test
// (a positive signal): it is the bounded observation window of a "nothing
// happened" claim, and it sees a delete even when the object is re-created
// before the window ends.
func (e *Env) ExpectNothingDeleted(ctx context.Context, release string, window time.Duration) error {
	sel := "app.kubernetes.io/part-of=meshcsi,app.kubernetes.io/instance=" + release
	ctx, cancel := context.WithTimeout(ctx, window)
	defer cancel()
	var (
		mu      sync.Mutex
		deleted []string
		errs    []error
		wg      sync.WaitGroup
	)
	for _, k := range kinds {
		if transient[k.gvr.Resource] {
			continue
		}
		served, err := e.served(k.gvr)
		if err != nil {
			return err
		}
		if !served {
			continue
		}
		ri := e.Kube.Dynamic.Resource(k.gvr)
		list, err := ri.List(ctx, metav1.ListOptions{LabelSelector: sel})
		if err != nil {
			return fmt.Errorf("failed to list %s: %w", k.gvr.Resource, err)
		}
		w, err := ri.Watch(ctx, metav1.ListOptions{LabelSelector: sel, ResourceVersion: list.GetResourceVersion()})
		if err != nil {
			return fmt.Errorf("failed to watch %s: %w", k.gvr.Resource, err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer w.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case ev, ok := <-w.ResultChan():
					if !ok {
						if ctx.Err() == nil {
							mu.Lock()
							errs = append(errs, fmt.Errorf("the watch of %s ended before the window did", k.gvr.Resource))
							mu.Unlock()
						}
						return
					}
					o, isObj := ev.Object.(*unstructured.Unstructured)
					if !isObj {
						continue
					}
					if ev.Type == watch.Deleted || o.GetDeletionTimestamp() != nil {
						mu.Lock()
						deleted = append(deleted, ref(k.gvr.Resource, o.GetNamespace(), o.GetName()))
						mu.Unlock()
					}
				}
			}
		}()
	}
	wg.Wait()
	if len(deleted) > 0 {
		errs = append(errs, fmt.Errorf("deleted within %s: %v", window, deleted))
	}
	return errors.Join(errs...)
}
