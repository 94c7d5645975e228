package env

import (
	"strings"
	"testing"
)

func TestMountsBelow(t *testing.T) {
	// The mount table escapes a space in a path as \040.
	const table = `22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
95 22 0:45 / /tmp/e2e\040dir/kubelet rw shared:50 - ext4 /dev/vda rw
96 95 0:46 / /tmp/e2e\040dir/kubelet/pods/uid-1/volumes/kubernetes.io~csi/sock/mount ro,nosuid,nodev,noexec,relatime - ext4 /dev/vda rw
97 95 0:47 / /tmp/e2e\040dir/kubelet/pods/uid-10/volumes/kubernetes.io~projected/tok rw - tmpfs tmpfs rw
`
	got, err := mountsBelow(strings.NewReader(table), "/tmp/e2e dir/kubelet/pods/uid-1")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 {
		t.Fatalf("mounts below uid-1 = %+v, want the one CSI mount", got)
	}
	m := got[0]
	if m.Mountpoint != "/tmp/e2e dir/kubelet/pods/uid-1/volumes/kubernetes.io~csi/sock/mount" || m.Options != "ro,nosuid,nodev,noexec,relatime" {
		t.Errorf("mount = %s %s", m.Mountpoint, m.Options)
	}
}
