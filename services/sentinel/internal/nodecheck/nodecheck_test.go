package nodecheck

import (
	"errors"
	"testing"
)

// known is what a driver that counted its mounts at start exports.
const known = "# TYPE meshcsi_published_volumes_known gauge\nmeshcsi_published_volumes_known 1\n"

func TestPublished(t *testing.T) {
	for _, tc := range []struct {
		name, text string
		want       int
		err        error
	}{
		{"two sources", known + "# TYPE meshcsi_published_volumes gauge\nmeshcsi_published_volumes{source=\"a\"} 2\nmeshcsi_published_volumes{source=\"b\"} 1\n", 3, nil},
		{"zero", known + "# TYPE meshcsi_published_volumes gauge\nmeshcsi_published_volumes{source=\"a\"} 0\n", 0, nil},
		{"missing", known + "# TYPE other gauge\nother 1\n", -1, ErrNoMetric},
		// The driver could not read its mount table at start: its 0 only
		// counts what it published since, so it is no answer.
		{"count unknown", "# TYPE meshcsi_published_volumes_known gauge\nmeshcsi_published_volumes_known 0\n# TYPE meshcsi_published_volumes gauge\nmeshcsi_published_volumes{source=\"a\"} 0\n", -1, ErrCountUnknown},
		// A driver that does not say whether its count is known is not trusted.
		{"not said", "# TYPE meshcsi_published_volumes gauge\nmeshcsi_published_volumes{source=\"a\"} 0\n", -1, ErrCountUnknown},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Published([]byte(tc.text))
			if got != tc.want || !errors.Is(err, tc.err) {
				t.Fatalf("Published = %d, %v; want %d, %v", got, err, tc.want, tc.err)
			}
		})
	}
	if _, err := Published([]byte("not{ metrics")); err == nil {
		t.Fatal("garbage parsed")
	}
}

func TestResult(t *testing.T) {
	r := Result{Nodes: []Node{
		{Node: "a", Pod: "d-1", Published: 0},
		{Node: "b", Pod: "d-2", Published: 2},
		{Node: "c", Pod: "d-3", Published: -1, Problem: "driver pod d-3 is pending"},
	}}
	if r.Clear() || !r.NodeClear("a") || r.NodeClear("b") || r.NodeClear("c") || r.NodeClear("unknown") {
		t.Fatalf("clear: %v a=%v b=%v c=%v", r.Clear(), r.NodeClear("a"), r.NodeClear("b"), r.NodeClear("c"))
	}
	want := "b: 2 published volumes (driver pod d-2); c: driver pod d-3 is pending"
	if got := r.Summary(5); got != want {
		t.Fatalf("Summary = %q, want %q", got, want)
	}
	if got := r.Summary(1); got != "b: 2 published volumes (driver pod d-2); and 1 more" {
		t.Fatalf("Summary(1) = %q", got)
	}
	if !(Result{}).Clear() {
		t.Fatal("no driver pods is clear")
	}
	if !moreCautious(Node{Problem: "x"}, Node{}) || moreCautious(Node{}, Node{Problem: "x"}) || !moreCautious(Node{Published: 2}, Node{Published: 1}) {
		t.Fatal("moreCautious")
	}
}
