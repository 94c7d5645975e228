package logfield

import (
	"strings"
	"testing"
)

func TestBound(t *testing.T) {
	long := strings.Repeat("a", 4<<20)
	for _, tt := range []struct{ in, want string }{
		{"", ""},
		{"pods/uid/volumes/kubernetes.io~csi/vol/mount", "pods/uid/volumes/kubernetes.io~csi/vol/mount"},
		{"héllo", "héllo"},
		{"a\nb\x1b[31m\x00", `a\nb\x1b[31m\x00`},
		{`back\slash`, `back\\slash`},
		{"bad\xffutf8", `bad\xffutf8`},
		{"line\u2028sep\u0085", `line\u2028sep\u0085`},
		{long, strings.Repeat("a", MaxLen) + "...(4194304 bytes)"},
		{strings.Repeat("a", MaxLen-1) + "é" + "zzz", strings.Repeat("a", MaxLen-1) + "...(260 bytes)"},
	} {
		if got := Bound(tt.in); got != tt.want {
			t.Errorf("Bound(%.40q) = %.80q, want %.80q", tt.in, got, tt.want)
		}
	}
}

func TestBoundDoesNotAllocateForCleanValues(t *testing.T) {
	v := "/var/lib/kubelet/pods/0b6f7c3e/volumes/kubernetes.io~csi/spire/mount"
	if n := testing.AllocsPerRun(100, func() { _ = Bound(v) }); n != 0 {
		t.Fatalf("Bound allocated %v times", n)
	}
}

func FuzzBound(f *testing.F) {
	f.Add("a\nb")
	f.Add(strings.Repeat("é", 200))
	f.Fuzz(func(t *testing.T, v string) {
		got := Bound(v)
		if len(got) > 4*MaxLen+32 {
			t.Fatalf("Bound kept %d bytes", len(got))
		}
		for _, r := range got {
			if r < 0x20 || r == 0x7f {
				t.Fatalf("Bound(%q) = %q holds a control character", v, got)
			}
		}
	})
}
