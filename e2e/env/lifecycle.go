package env

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"

	"github.com/meshcsi/meshcsi/e2e/agent"
	"github.com/meshcsi/meshcsi/e2e/helm"
	"github.com/meshcsi/meshcsi/e2e/images"
	"github.com/meshcsi/meshcsi/e2e/kube"
)

// What the lifecycle cases (upgrade, restarts, reboot: docs/e2e.md) need:
// pods created and deleted while the node goes through a fault, the mount
// Events of the pods and whether each resolved, the CSI mounts, the driver's
// process and a second driver image to upgrade to.

// WorkloadVolume is the name of the CSI volume in every workload pod.
const WorkloadVolume = "agent-socket"

// RoleLabel tells the lifecycle cases' long-lived workloads from their churn.
const RoleLabel = "meshcsi-e2e/role"

// CreateWorkloads creates workload pods (WorkloadPod, labelled RoleLabel=role)
// and waits until each has reached the agent through its volume.
func (e *Env) CreateWorkloads(ctx context.Context, namespace, role string, names []string, timeout time.Duration) error {
	created := time.Now()
	for _, name := range names {
		p := WorkloadPod(namespace, name, "")
		p.Labels[RoleLabel] = role
		if _, err := e.Kube.Kube.CoreV1().Pods(namespace).Create(ctx, p, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("failed to create pod %s/%s: %w", namespace, name, err)
		}
	}
	return e.WaitPings(ctx, namespace, names, created, timeout)
}

// WaitPings waits until the agent has heard from every named pod after the
// given time: each pod still connects to the socket through its volume.
func (e *Env) WaitPings(ctx context.Context, namespace string, names []string, after time.Time, timeout time.Duration) error {
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	seen := map[string]bool{}
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	_, err := e.Agent.WaitFor(wctx, func(p agent.Ping) bool {
		if want[p.Name] && !p.At.Before(after) {
			seen[p.Name] = true
		}
		return len(seen) == len(want)
	})
	if err != nil {
		var missing []string
		for n := range want {
			if !seen[n] {
				missing = append(missing, n)
			}
		}
		sort.Strings(missing)
		var why []string
		for _, n := range missing {
			why = append(why, n+": "+e.PodSummary(ctx, namespace, n))
		}
		return fmt.Errorf("no ping after %s from %d of %d pods %v: %w", after.Format("15:04:05.000"), len(missing), len(want), why, err)
	}
	return nil
}

// Churn keeps creating workload pods and deleting the oldest, so pods are
// being set up and torn down while a case's fault happens.
type Churn struct {
	cancel context.CancelFunc
	done   chan struct{}
	mu     sync.Mutex
	res    ChurnResult
}

// ChurnResult is what a churn did.
type ChurnResult struct {
	// Created and Deleted count the API calls that succeeded.
	Created, Deleted int
	// Alive are the pods created and not deleted; Gone the deleted ones.
	Alive, Gone []string
	// Errors are the failed API calls.
	Errors []string
}

// StartChurn creates a pod <prefix>-<n> every interval and deletes the
// oldest one once more than keep are alive, until Stop. The pace is load,
// not a wait: nothing is asserted on it.
func (e *Env) StartChurn(ctx context.Context, namespace, prefix string, keep int, interval time.Duration) *Churn {
	ctx, cancel := context.WithCancel(ctx)
	c := &Churn{cancel: cancel, done: make(chan struct{})}
	pods := e.Kube.Kube.CoreV1().Pods(namespace)
	go func() {
		defer close(c.done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for n := 1; ; n++ {
			name := prefix + "-" + strconv.Itoa(n)
			p := WorkloadPod(namespace, name, "")
			p.Labels[RoleLabel] = "churn"
			_, err := pods.Create(ctx, p, metav1.CreateOptions{})
			c.mu.Lock()
			if err == nil {
				c.res.Created++
				c.res.Alive = append(c.res.Alive, name)
			} else if ctx.Err() == nil {
				c.res.Errors = append(c.res.Errors, err.Error())
			}
			var victim string
			if len(c.res.Alive) > keep {
				victim = c.res.Alive[0]
			}
			c.mu.Unlock()
			if victim != "" {
				err := pods.Delete(ctx, victim, metav1.DeleteOptions{})
				c.mu.Lock()
				if err == nil {
					c.res.Deleted++
					c.res.Alive = c.res.Alive[1:]
					c.res.Gone = append(c.res.Gone, victim)
				} else if ctx.Err() == nil {
					c.res.Errors = append(c.res.Errors, err.Error())
				}
				c.mu.Unlock()
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return c
}

// Stop ends the churn and returns what it did.
func (c *Churn) Stop() ChurnResult {
	c.cancel()
	<-c.done
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.res
}

// MountEvents records the FailedMount and FailedUnmount Events of the pods
// of one namespace (through an informer: no Event is missed between two
// looks).
type MountEvents struct {
	since  time.Time
	stop   chan struct{}
	mu     sync.Mutex
	events map[types.UID]*PodMountEvents
}

// PodMountEvents are the mount Events of one pod.
type PodMountEvents struct {
	Pod string
	UID types.UID
	// Count is the number of occurrences by reason (an Event's count
	// included).
	Count map[string]int32
	// Last is the newest message.
	Last string
}

// WatchMountEvents starts recording the mount Events of namespace's pods
// that occur from now on.
func (e *Env) WatchMountEvents(ctx context.Context, namespace string) (*MountEvents, error) {
	m := &MountEvents{since: time.Now().Truncate(time.Second), stop: make(chan struct{}), events: map[types.UID]*PodMountEvents{}}
	f := informers.NewSharedInformerFactoryWithOptions(e.Kube.Kube, 0, informers.WithNamespace(namespace))
	inf := f.Core().V1().Events().Informer()
	record := func(obj any) {
		ev, ok := obj.(*corev1.Event)
		if !ok || ev.InvolvedObject.Kind != "Pod" || (ev.Reason != "FailedMount" && ev.Reason != "FailedUnmount") {
			return
		}
		last := ev.LastTimestamp.Time
		if last.IsZero() {
			last = ev.EventTime.Time
		}
		if last.Before(m.since) {
			return
		}
		count := ev.Count
		if ev.Series != nil {
			count = ev.Series.Count
		}
		count = max(count, 1)
		m.mu.Lock()
		defer m.mu.Unlock()
		p := m.events[ev.InvolvedObject.UID]
		if p == nil {
			p = &PodMountEvents{Pod: ev.InvolvedObject.Name, UID: ev.InvolvedObject.UID, Count: map[string]int32{}}
			m.events[ev.InvolvedObject.UID] = p
		}
		// One Event object per reason and message: keep the highest count
		// seen for this object, summed over objects.
		key := ev.Reason + "\x00" + string(ev.UID)
		if count > p.Count[key] {
			p.Count[key] = count
		}
		p.Last = ev.Reason + ": " + ev.Message
	}
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    record,
		UpdateFunc: func(_, obj any) { record(obj) },
	}); err != nil {
		return nil, fmt.Errorf("failed to watch events: %w", err)
	}
	go inf.Run(m.stop)
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		close(m.stop)
		return nil, errors.New("event informer never synced")
	}
	return m, nil
}

// Stop ends the recording.
func (m *MountEvents) Stop() { close(m.stop) }

// Pods returns the pods with mount Events and their counts by reason.
func (m *MountEvents) Pods() []PodMountEvents {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]PodMountEvents, 0, len(m.events))
	for _, p := range m.events {
		c := PodMountEvents{Pod: p.Pod, UID: p.UID, Last: p.Last, Count: map[string]int32{}}
		for k, n := range p.Count {
			reason, _, _ := strings.Cut(k, "\x00")
			c.Count[reason] += n
		}
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Pod < out[j].Pod })
	return out
}

// EventFigures say how the mount Events of a case ended.
type EventFigures struct {
	// Events counts occurrences by reason; Pods the pods that had any.
	Events map[string]int32
	Pods   int
	// ResolvedRunning are pods that reached Running with every container
	// ready after their Events; ResolvedDeleted pods that were deleted and
	// whose object is gone (the kubelet finished them).
	ResolvedRunning, ResolvedDeleted int
	// Unresolved are the pods that did neither within the wait.
	Unresolved []string
}

// Total is the number of Event occurrences.
func (f EventFigures) Total() int32 {
	var n int32
	for _, c := range f.Events {
		n += c
	}
	return n
}

// WaitMountEventsResolved waits until every pod with a mount Event has
// resolved it by itself: the pod is Running with every container ready, or
// it was deleted and its object is gone. Pods still short of either at the
// deadline are Unresolved. Call it once nothing is being created or deleted
// any more.
func (e *Env) WaitMountEventsResolved(ctx context.Context, namespace string, m *MountEvents, timeout time.Duration) EventFigures {
	var f EventFigures
	check := func(ctx context.Context) (bool, error) {
		pods := m.Pods()
		f = EventFigures{Events: map[string]int32{}, Pods: len(pods)}
		for _, p := range pods {
			for r, n := range p.Count {
				f.Events[r] += n
			}
		}
		l, err := e.Kube.Kube.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, nil //nolint:nilerr // retried until the deadline
		}
		byUID := map[types.UID]*corev1.Pod{}
		for i := range l.Items {
			byUID[l.Items[i].UID] = &l.Items[i]
		}
		for _, p := range pods {
			pod := byUID[p.UID]
			switch {
			case pod == nil:
				f.ResolvedDeleted++
			case pod.DeletionTimestamp == nil && kube.PodReady(pod):
				f.ResolvedRunning++
			default:
				f.Unresolved = append(f.Unresolved, fmt.Sprintf("%s (%s, %s)", p.Pod, kube.PodState(pod), p.Last))
			}
		}
		return len(f.Unresolved) == 0, nil
	}
	_ = wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, timeout, true, check)
	return f
}

// WaitPodsSettled waits until every pod matching selector in namespace is
// Running with every container ready, and none is Terminating. It returns the
// number of running pods and the pods still short of that at the deadline:
// the stuck ones.
func (e *Env) WaitPodsSettled(ctx context.Context, namespace, selector string, timeout time.Duration) (running int, stuck []string) {
	_ = wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		l, err := e.Kube.Kube.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			return false, nil //nolint:nilerr // retried until the deadline
		}
		running, stuck = 0, nil
		for i := range l.Items {
			p := &l.Items[i]
			if p.DeletionTimestamp == nil && kube.PodReady(p) {
				running++
				continue
			}
			stuck = append(stuck, p.Name+" ("+kube.PodState(p)+")")
		}
		return len(stuck) == 0, nil
	})
	return running, stuck
}

// RunningVolumes returns, for every pod matching selector that is Running
// and not being deleted, the CSI volumes it should have mounted (pod UID ->
// volume names), for CheckCSIMounts.
func (e *Env) RunningVolumes(ctx context.Context, namespace, selector string) (map[string][]string, error) {
	l, err := e.Kube.Kube.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		return nil, fmt.Errorf("failed to list pods: %w", err)
	}
	out := map[string][]string{}
	for _, p := range l.Items {
		if p.DeletionTimestamp != nil || p.Status.Phase != corev1.PodRunning {
			continue
		}
		for _, v := range p.Spec.Volumes {
			if v.CSI != nil && v.CSI.Driver == DriverName {
				out[string(p.UID)] = append(out[string(p.UID)], v.Name)
			}
		}
	}
	return out, nil
}

// DriverProcesses returns the PIDs of the meshcsi-driver processes on this
// machine (the driver container's main process, seen from the host).
func DriverProcesses() []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	want := images.Driver.Path()
	var pids []int
	for _, en := range entries {
		pid, err := strconv.Atoi(en.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", en.Name(), "cmdline"))
		if err != nil {
			continue
		}
		if argv0, _, _ := strings.Cut(string(cmdline), "\x00"); argv0 == want {
			pids = append(pids, pid)
		}
	}
	return pids
}

// KillDriver SIGKILLs the driver's process, as the OOM killer would: no
// graceful stop, its sockets and lock files stay behind.
func KillDriver() (int, error) {
	pids := DriverProcesses()
	if len(pids) != 1 {
		return 0, fmt.Errorf("want exactly one %s process, found %v", images.Driver.Binary, pids)
	}
	if err := syscall.Kill(pids[0], syscall.SIGKILL); err != nil {
		return 0, fmt.Errorf("failed to kill the driver (pid %d): %w", pids[0], err)
	}
	return pids[0], nil
}

// DriverContainer returns the running driver pod's container status.
func (e *Env) DriverContainer(ctx context.Context, namespace, release string) (*corev1.Pod, corev1.ContainerStatus, error) {
	p, err := e.DriverPod(ctx, namespace, release)
	if err != nil {
		return nil, corev1.ContainerStatus{}, err
	}
	for _, cs := range p.Status.ContainerStatuses {
		if cs.Name == "driver" {
			return p, cs, nil
		}
	}
	return nil, corev1.ContainerStatus{}, fmt.Errorf("driver pod %s has no driver container status", p.Name)
}

// BuildImages builds the images meshcsi/<image>:<tag> with version stamped
// into the binaries (under dir) and imports them into the node: new images
// to upgrade to.
func (e *Env) BuildImages(ctx context.Context, dir, tag, version string, imgs ...images.Image) error {
	archives, err := images.Build(ctx, e.Root, dir, tag, version, imgs...)
	if err != nil {
		return err
	}
	return e.Cluster.ImportImages(ctx, archives...)
}

// Upgrade runs `helm upgrade --wait` with the install's values
// (InstallValues) and extra, as a user upgrading with their values file
// does, and returns helm's output. (Not --reuse-values: the stored
// `sources.spire-agent=null` of the install fails the schema when reused.)
func (e *Env) Upgrade(ctx context.Context, release, namespace string, extra map[string]string) (string, error) {
	args := []string{"upgrade", release, e.ChartDir, "--namespace", namespace, "--wait", "--timeout", "3m"}
	return e.Helm.Run(ctx, append(args, helm.SetArgs(e.InstallValues(extra))...)...)
}

// Rollback runs `helm rollback --wait` to the previous revision.
func (e *Env) Rollback(ctx context.Context, release, namespace string) (string, error) {
	return e.Helm.Run(ctx, "rollback", release, "--namespace", namespace, "--wait", "--timeout", "3m")
}
