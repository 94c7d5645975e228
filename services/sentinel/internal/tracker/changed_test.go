package tracker

import (
	"testing"

	"k8s.io/client-go/kubernetes/fake"
)

// A sentinel that waits for days re-arms both Changed channels at every
// wake-up, but pod events wake it far more often than marker events (and
// vice versa in waitPodsOf): re-arming without an event must not pile up
// channels, or memory grows with the cluster's pod churn.
func TestChangedDoesNotAccumulateWithoutEvents(t *testing.T) {
	client := fake.NewClientset()
	tr, err := NewPods(client.CoreV1(), driver, installNS)
	if err != nil {
		t.Fatal(err)
	}
	mk, err := NewMarker(client.CoreV1(), "ns", "marker")
	if err != nil {
		t.Fatal(err)
	}
	tr.Changed()
	mk.Changed()
	if n := testing.AllocsPerRun(1000, func() { _ = tr.Changed() }); n != 0 {
		t.Errorf("Pods.Changed allocates %v per call while no event came", n)
	}
	if n := testing.AllocsPerRun(1000, func() { _ = mk.Changed() }); n != 0 {
		t.Errorf("Marker.Changed allocates %v per call while no event came", n)
	}
	// Still a one-shot signal: closed by the next event, then re-armed.
	for _, c := range []struct {
		name    string
		changed func() <-chan struct{}
		notify  func()
	}{{"pods", tr.Changed, tr.changed.notify}, {"marker", mk.Changed, mk.changed.notify}} {
		a, b := c.changed(), c.changed()
		c.notify()
		for _, ch := range []<-chan struct{}{a, b} {
			select {
			case <-ch:
			default:
				t.Fatalf("%s: a channel handed out before the event was not closed", c.name)
			}
		}
		next := c.changed()
		select {
		case <-next:
			t.Fatalf("%s: a channel handed out after the event is already closed", c.name)
		default:
		}
	}
}
