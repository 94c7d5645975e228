package env

import (
	"fmt"
	"path/filepath"

	"github.com/moby/sys/mountinfo"
)

// PodMounts returns the entries of the kubelet's mount table at or below the
// pod's directory, i.e. the pod's volume mounts as the kubelet sees them.
func (e *Env) PodMounts(podUID string) ([]*mountinfo.Info, error) {
	return kubeletMounts(e.Cluster.PIDs()["kubelet"], filepath.Join(e.Cluster.KubeletDir(), "pods", podUID))
}

// MountsOf returns the pod's mounts (PodMounts) as "mount point, file system
// type, options" lines, for logs and before/after comparisons.
func (e *Env) MountsOf(podUID string) ([]string, error) {
	infos, err := e.PodMounts(podUID)
	if err != nil {
		return nil, err
	}
	return FormatMounts(infos), nil
}

// FormatMounts renders mounts as "mount point, file system type, options"
// lines.
func FormatMounts(infos []*mountinfo.Info) []string {
	out := make([]string, 0, len(infos))
	for _, m := range infos {
		out = append(out, fmt.Sprintf("%s %s %s", m.Mountpoint, m.FSType, m.Options))
	}
	return out
}
