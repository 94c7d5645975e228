package env

import (
	"reflect"
	"strings"
	"testing"

	"github.com/moby/sys/mountinfo"
)

// A kubelet mount table: pod uid-1 with its CSI volume mounted once, pod
// uid-2 with two mounts stacked on its target, a projected volume and a
// mount of pod uid-3's volume.
const csiTable = `22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
95 22 254:0 /k /k rw shared:50 - ext4 /dev/vda rw
96 95 254:0 /agent /k/pods/uid-1/volumes/kubernetes.io~csi/agent-socket/mount ro,nosuid,nodev,noexec,relatime shared:50 - ext4 /dev/vda rw
97 95 0:47 / /k/pods/uid-1/volumes/kubernetes.io~projected/kube-api-access-x rw - tmpfs tmpfs rw
98 95 254:0 /agent /k/pods/uid-2/volumes/kubernetes.io~csi/agent-socket/mount ro,nosuid,nodev,noexec,relatime shared:50 - ext4 /dev/vda rw
99 98 254:0 /agent /k/pods/uid-2/volumes/kubernetes.io~csi/agent-socket/mount ro,nosuid,nodev,noexec,relatime shared:50 - ext4 /dev/vda rw
100 95 254:0 /agent /k/pods/uid-3/volumes/kubernetes.io~csi/agent-socket/mount ro,nosuid,nodev,noexec,relatime shared:50 - ext4 /dev/vda rw
101 95 254:0 /agent /k/pods/uid-3/volumes/kubernetes.io~csi/agent-socket/mount/sub ro - ext4 /dev/vda rw
`

func parseCSITable(t *testing.T) []CSIMount {
	t.Helper()
	infos, err := mountinfo.GetMountsFromReader(strings.NewReader(csiTable), mountinfo.PrefixFilter("/k/pods"))
	if err != nil {
		t.Fatal(err)
	}
	return csiMountsOf(infos, "/k/pods")
}

func TestCSIMountsOf(t *testing.T) {
	got := parseCSITable(t)
	var ids []int
	for _, m := range got {
		if m.Volume != "agent-socket" || m.Root != "/agent" {
			t.Errorf("mount %+v", m)
		}
		ids = append(ids, m.ID)
	}
	// Not the projected volume, not a mount below a target.
	if want := []int{96, 98, 99, 100}; !reflect.DeepEqual(ids, want) {
		t.Errorf("CSI mount IDs %v, want %v", ids, want)
	}
}

func TestCheckCSIMounts(t *testing.T) {
	mounts := parseCSITable(t)
	vol := []string{"agent-socket"}
	tests := []struct {
		name string
		want map[string][]string
		// problems that must be reported (substrings, one per line).
		problems []string
	}{
		{"stacked mount and a pod that should have none", map[string][]string{"uid-1": vol, "uid-2": vol},
			[]string{"pod uid-2 volume agent-socket: 2 mounts stacked on its target", "pod uid-3 volume agent-socket: 1 mount(s), want none"}},
		{"missing mount", map[string][]string{"uid-1": vol, "uid-2": vol, "uid-3": vol, "uid-4": vol},
			[]string{"pod uid-2 volume agent-socket: 2 mounts stacked", "pod uid-4 volume agent-socket: not mounted"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := CheckCSIMounts(mounts, tt.want)
			if len(got) != len(tt.problems) {
				t.Fatalf("problems %q, want %d", got, len(tt.problems))
			}
			for i, p := range tt.problems {
				if !strings.Contains(got[i], p) {
					t.Errorf("problem %d = %q, want %q", i, got[i], p)
				}
			}
		})
	}
	// Exactly one mount each: no problem.
	if got := CheckCSIMounts(mounts[:1], map[string][]string{"uid-1": vol}); len(got) != 0 {
		t.Errorf("one mount per volume: %q", got)
	}
	if got := CheckCSIMounts(nil, nil); len(got) != 0 {
		t.Errorf("nothing mounted, nothing wanted: %q", got)
	}
}
