package kubeclient

import (
	"errors"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
	"k8s.io/klog/v2"
)

func TestRouteKlog(t *testing.T) {
	core, logs := observer.New(zap.InfoLevel)
	RouteKlog(zap.New(core))
	t.Cleanup(klog.ClearLogger)

	klog.ErrorS(errors.New("boom"), "failed to release lock", "lease", "ns/x")
	klog.V(4).InfoS("chatty detail")
	klog.Flush()

	got := logs.FilterMessage("failed to release lock").All()
	if len(got) != 1 {
		t.Fatalf("routed entries = %d, want 1; all: %v", len(got), logs.All())
	}
	if got[0].LoggerName != "client-go" || got[0].Level != zap.ErrorLevel || got[0].ContextMap()["lease"] != "ns/x" {
		t.Fatalf("unexpected entry %+v", got[0])
	}
	if n := logs.FilterMessage("chatty detail").Len(); n != 0 {
		t.Fatalf("V(4) line logged at info level (%d entries)", n)
	}
}
