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
// install runs (pods, the sentinel's Job and Lease): WatchDeletions does not
// watch them.
var transient = map[string]bool{"pods": true, "jobs": true, "leases": true}

// DeletionWatch watches the objects of a release for deletions; see
// WatchDeletions.
type DeletionWatch struct {
	watches   []watch.Interface
	resources []string
}

// WatchDeletions starts watching the objects labelled as part of release that
// an install keeps (every kind ReleaseObjects knows but pods, Jobs and
// Leases), from the state it lists now: a delete after it returns is seen,
// even of an object re-created before Wait ends.
func (e *Env) WatchDeletions(ctx context.Context, release string) (*DeletionWatch, error) {
	sel := "app.kubernetes.io/part-of=meshcsi,app.kubernetes.io/instance=" + release
	d := &DeletionWatch{}
	for _, k := range kinds {
		if transient[k.gvr.Resource] {
			continue
		}
		served, err := e.served(k.gvr)
		if err == nil && !served {
			continue
		}
		var w watch.Interface
		if err == nil {
			ri := e.Kube.Dynamic.Resource(k.gvr)
			var list *unstructured.UnstructuredList
			if list, err = ri.List(ctx, metav1.ListOptions{LabelSelector: sel}); err == nil {
				w, err = ri.Watch(ctx, metav1.ListOptions{LabelSelector: sel, ResourceVersion: list.GetResourceVersion()})
			}
		}
		if err != nil {
			d.stop()
			return nil, fmt.Errorf("failed to watch %s: %w", k.gvr.Resource, err)
		}
		d.watches = append(d.watches, w)
		d.resources = append(d.resources, k.gvr.Resource)
	}
	return d, nil
}

// Wait observes for window and returns an error naming each object deleted
// or marked for deletion since WatchDeletions; it stops the watches. It is
// the bounded observation window of a "nothing happened" claim, to be opened
// once a positive signal says the system is in the state under test.
func (d *DeletionWatch) Wait(ctx context.Context, window time.Duration) error {
	defer d.stop()
	ctx, cancel := context.WithTimeout(ctx, window)
	defer cancel()
	var (
		mu      sync.Mutex
		deleted []string
		errs    []error
		wg      sync.WaitGroup
	)
	for i, w := range d.watches {
		resource := d.resources[i]
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-ctx.Done():
					return
				case ev, ok := <-w.ResultChan():
					mu.Lock()
					switch o, isObj := ev.Object.(*unstructured.Unstructured); {
					case !ok:
						errs = append(errs, fmt.Errorf("the watch of %s ended before the window did", resource))
					case isObj && (ev.Type == watch.Deleted || o.GetDeletionTimestamp() != nil):
						deleted = append(deleted, ref(resource, o.GetNamespace(), o.GetName()))
					}
					mu.Unlock()
					if !ok {
						return
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

func (d *DeletionWatch) stop() {
	for _, w := range d.watches {
		w.Stop()
	}
}

// ExpectNothingDeleted is WatchDeletions then Wait(window).
func (e *Env) ExpectNothingDeleted(ctx context.Context, release string, window time.Duration) error {
	d, err := e.WatchDeletions(ctx, release)
	if err != nil {
		return err
	}
	return d.Wait(ctx, window)
}
