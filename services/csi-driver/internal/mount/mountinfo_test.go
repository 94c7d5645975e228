package mount

import (
	"os"
	"reflect"
	"strings"
	"testing"
)

func TestPointsBelow(t *testing.T) {
	f, err := os.Open("testdata/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, err := PointsBelow(f, "/var/lib/kubelet/pods")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"/var/lib/kubelet/pods/0b6f/volumes/kubernetes.io~csi/spire/mount",
		"/var/lib/kubelet/pods/0b6f/volumes/kubernetes.io~csi/spire/mount",
		"/var/lib/kubelet/pods/1c2d/volumes/kubernetes.io~csi/with space/mount",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("PointsBelow = %q, want %q", got, want)
	}
	if _, err := PointsBelow(strings.NewReader("bad line\n"), "/x"); err == nil {
		t.Fatal("a malformed line was accepted")
	}
}

func TestUnescape(t *testing.T) {
	for in, want := range map[string]string{`a\040b`: "a b", `a\134b`: `a\b`, `tail\04`: `tail\04`, `plain`: "plain"} {
		if got := unescape(in); got != want {
			t.Errorf("unescape(%q) = %q, want %q", in, got, want)
		}
	}
}
