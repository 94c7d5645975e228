//go:build linux

package mount

import (
	"os"
	"testing"

	"github.com/moby/sys/mountinfo"
)

func TestLocate(t *testing.T) {
	f, err := os.Open("testdata/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	infos, err := mountinfo.GetMountsFromReader(f, nil)
	if err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]fsRoot{
		"/run/spire":                        {major: 0, minor: 23, root: "/spire"},
		"/run":                              {major: 0, minor: 23, root: "/"},
		"/var/lib/kubelet/pods/x":           {major: 0, minor: 26, root: "/x"},
		"/var/lib/kubelet/plugins/y":        {major: 259, minor: 1, root: "/var/lib/kubelet/plugins/y"},
		"/var/lib/kubelet/pods-other/x/in":  {major: 0, minor: 25, root: "/in"},
		"/opt/agent with space/socket/here": {major: 259, minor: 1, root: "/opt/agent with space/socket/here"},
	} {
		if got, ok := locate(infos, p); !ok || got != want {
			t.Errorf("locate(%s) = %+v, %v; want %+v", p, got, ok, want)
		}
	}
	var names []string
	for _, in := range infos {
		names = append(names, in.Mountpoint)
	}
	if want := "/var/lib/kubelet/pods/1c2d/volumes/kubernetes.io~csi/with space/mount"; names[5] != want {
		t.Errorf("mount point %q, want the unescaped %q", names[5], want)
	}
}
