package run_test

import (
	"context"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/clock"

	"github.com/meshcsi/meshcsi/services/sentinel/internal/run"
	"github.com/meshcsi/meshcsi/services/sentinel/internal/sentineltest"
)

// A sentinel that stands down inside its Job (issue 13 finding 8: nobody
// may create the Job again) suspends that Job and ends only when stopped, so
// the Job is left suspended, not Complete, and the next hand-off resumes it.
func TestStandDownInJobSuspendsIt(t *testing.T) {
	h := setup(t, clock.RealClock{}, 0, blockingPod("team-a", "web"))
	core, logs := observer.New(zap.InfoLevel)
	h.logs = logs
	var err error
	h.s, err = run.New(h.cfg, run.Deps{Clients: h.c.Clients(), Clock: clock.RealClock{}, Logger: zap.New(core),
		Recorder: record.NewFakeRecorder(100), InJob: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	go func() {
		defer close(h.done)
		h.summary, h.err = h.s.Run(ctx)
	}()
	h.waitLog(t, "waiting for 1 pods")
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: sentineltest.NS, Name: h.cfg.InstallMarker, UID: "uid-marker-2"}}
	if _, err := h.c.Client.CoreV1().ConfigMaps(sentineltest.NS).Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	h.waitLog(t, "suspended the sentinel Job")
	job, err := h.c.Client.BatchV1().Jobs(sentineltest.NS).Get(ctx, h.cfg.JobName, metav1.GetOptions{})
	if err != nil || job.Spec.Suspend == nil || !*job.Spec.Suspend {
		t.Fatalf("Job %v, %v: want suspended", job, err)
	}
	// Still running: it waits for the Job controller to stop its pod.
	select {
	case <-h.done:
		t.Fatalf("ended before it was stopped: %v", h.err)
	case <-time.After(200 * time.Millisecond):
	}
	cancel(context.Canceled)
	h.wait(t)
	if h.err == nil || h.summary.Result != run.ResultStoodDown {
		t.Fatalf("Run() = %+v, %v; want stood down and an interrupted error", h.summary, h.err)
	}
}
