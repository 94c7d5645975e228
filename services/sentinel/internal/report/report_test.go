package report

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/record"

	"github.com/meshcsi/meshcsi/services/sentinel/internal/tracker"
)

func blockers(n int) []tracker.Blocker {
	out := make([]tracker.Blocker, n)
	for i := range out {
		out[i] = tracker.Blocker{Namespace: "ns", Name: fmt.Sprintf("p%02d", i), OwnerKind: "ReplicaSet", OwnerName: "rs", Node: "n1", Phase: "Running"}
	}
	return out
}

func TestWaitingListsAtMostTwenty(t *testing.T) {
	tests := []struct {
		n        int
		listed   int
		moreText string
	}{{0, 0, ""}, {1, 1, ""}, {20, 20, ""}, {25, 20, "and 5 more"}}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.n), func(t *testing.T) {
			core, logs := observer.New(zap.InfoLevel)
			rec := record.NewFakeRecorder(1)
			r := New(zap.New(core), rec, &corev1.ObjectReference{Kind: "Job", Name: "j", Namespace: "ns"})
			r.Waiting(blockers(tt.n), 3*time.Second)
			entry := logs.All()[0]
			if entry.Message != fmt.Sprintf("waiting for %d pods", tt.n) {
				t.Fatalf("message = %q", entry.Message)
			}
			if got := len(entry.ContextMap()["blockers"].([]any)); got != tt.listed {
				t.Fatalf("listed %d blockers, want %d", got, tt.listed)
			}
			ev := <-rec.Events
			if !strings.HasPrefix(ev, "Normal "+ReasonWaiting+" waiting for") || strings.Count(ev, "(ReplicaSet/rs, node n1, Running)") != tt.listed {
				t.Fatalf("event = %q", ev)
			}
			if tt.moreText != "" && !strings.Contains(ev, tt.moreText) {
				t.Fatalf("event %q lacks %q", ev, tt.moreText)
			}
		})
	}
}

func TestNoTargetMeansLogOnly(t *testing.T) {
	rec := record.NewFakeRecorder(1)
	New(zap.NewNop(), rec, nil).Waiting(blockers(1), 0)
	if len(rec.Events) != 0 {
		t.Fatal("event emitted without a target")
	}
}
