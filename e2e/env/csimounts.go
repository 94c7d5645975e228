package env

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"github.com/moby/sys/mountinfo"
)

// CSIMount is one entry of the kubelet's mount table at a CSI volume's
// target, <kubelet-dir>/pods/<uid>/volumes/kubernetes.io~csi/<volume>/mount.
type CSIMount struct {
	// PodUID and Volume name the pod and its volume.
	PodUID, Volume string
	// ID is the mount's ID: a remount gets a new one.
	ID int
	// Mountpoint, Root and Options as in the mount table.
	Mountpoint, Root, Options string
}

// CSIMounts returns every CSI volume mount of every pod in the kubelet's
// mount table, in table order (a mount stacked on another comes after it).
func (e *Env) CSIMounts() ([]CSIMount, error) {
	podsDir := filepath.Join(e.Cluster.KubeletDir(), "pods")
	infos, err := kubeletMounts(e.Cluster.PIDs()["kubelet"], podsDir)
	if err != nil {
		return nil, err
	}
	return csiMountsOf(infos, podsDir), nil
}

// csiMountsOf keeps the mounts at a CSI volume target below podsDir.
func csiMountsOf(infos []*mountinfo.Info, podsDir string) []CSIMount {
	var out []CSIMount
	for _, m := range infos {
		rel, err := filepath.Rel(podsDir, m.Mountpoint)
		if err != nil {
			continue
		}
		// <uid>/volumes/kubernetes.io~csi/<volume>/mount
		parts := strings.Split(rel, string(filepath.Separator))
		if len(parts) != 5 || parts[1] != "volumes" || parts[2] != "kubernetes.io~csi" || parts[4] != "mount" {
			continue
		}
		out = append(out, CSIMount{PodUID: parts[0], Volume: parts[3], ID: m.ID, Mountpoint: m.Mountpoint, Root: m.Root, Options: m.Options})
	}
	return out
}

// CheckCSIMounts compares the mounts with the CSI volumes that should be
// mounted (pod UID -> volume names): it returns one line per problem, none
// when each of those volumes has exactly one mount and nothing else is
// mounted. Problems: a volume with no mount, a volume with mounts stacked
// on its target (the failure that left 16,384 mounts on a node with another
// driver), a mount of a pod or volume that should have none.
func CheckCSIMounts(mounts []CSIMount, want map[string][]string) []string {
	type key struct{ uid, vol string }
	count := map[key]int{}
	for _, m := range mounts {
		count[key{m.PodUID, m.Volume}]++
	}
	expected := map[key]bool{}
	var problems []string
	for uid, vols := range want {
		for _, v := range vols {
			k := key{uid, v}
			expected[k] = true
			switch n := count[k]; {
			case n == 0:
				problems = append(problems, fmt.Sprintf("pod %s volume %s: not mounted", uid, v))
			case n > 1:
				problems = append(problems, fmt.Sprintf("pod %s volume %s: %d mounts stacked on its target", uid, v, n))
			}
		}
	}
	for k, n := range count {
		if !expected[k] {
			problems = append(problems, fmt.Sprintf("pod %s volume %s: %d mount(s), want none (no such running pod)", k.uid, k.vol, n))
		}
	}
	sort.Strings(problems)
	return problems
}
