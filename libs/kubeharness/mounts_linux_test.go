package kubeharness

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/moby/sys/mountinfo"
)

func TestMountPointsFilter(t *testing.T) {
	info := []byte(`22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
95 22 0:45 / /tmp/kh\040dir/kubelet rw shared:50 - ext4 /dev/vda rw
96 95 0:46 / /tmp/kh\040dir/kubelet/pods/x/volumes/tok rw - tmpfs tmpfs rw
97 22 0:4 net:[4026532] /run/netns/cni-1234 rw shared:51 - nsfs nsfs rw
98 22 0:4 net:[4026533] /run/netns/other rw shared:52 - nsfs nsfs rw
`)
	infos, err := mountinfo.GetMountsFromReader(bytes.NewReader(info), nil)
	if err != nil {
		t.Fatal(err)
	}
	all := mountPointsOf(infos)
	if len(all) != 5 || all[1] != "/tmp/kh dir/kubelet" {
		t.Fatalf("mount points = %q", all)
	}
	tests := []struct {
		prefixes []string
		want     []string
	}{
		{[]string{"/tmp/kh dir"}, []string{"/tmp/kh dir/kubelet", "/tmp/kh dir/kubelet/pods/x/volumes/tok"}},
		{[]string{"/tmp/kh"}, nil},
		{[]string{"/run/netns/cni-"}, []string{"/run/netns/cni-1234"}},
		{[]string{"", "/tmp/kh dir/kubelet/pods/x/volumes/tok"}, []string{"/tmp/kh dir/kubelet/pods/x/volumes/tok"}},
	}
	for _, tt := range tests {
		if got := filterMounts(all, tt.prefixes); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("filterMounts(%q) = %q, want %q", tt.prefixes, got, tt.want)
		}
	}
}
