package kubeharness

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
)

// What Node mode leaves on the host besides mounts and network: processes in
// the kubelet's pod cgroups, the cgroups themselves, the kubelet's log links
// and the directories it creates at fixed paths.

// podCgroupDirs returns the kubelet's pod cgroup directories (cgroup v1 and
// v2 layouts), deepest first.
func podCgroupDirs() []string {
	var dirs []string
	roots, _ := filepath.Glob("/sys/fs/cgroup/*/kubepods*")
	if v2, _ := filepath.Glob("/sys/fs/cgroup/kubepods*"); len(v2) > 0 {
		roots = append(roots, v2...)
	}
	for _, root := range roots {
		_ = filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, path)
			}
			return nil
		})
	}
	sort.Slice(dirs, func(i, j int) bool { return len(dirs[i]) > len(dirs[j]) })
	return dirs
}

// PodProcesses returns the PIDs of processes in the kubelet's pod cgroups.
func PodProcesses() []int {
	seen := map[int]bool{}
	var pids []int
	for _, dir := range podCgroupDirs() {
		data, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(data)) {
			var pid int
			if _, err := fmt.Sscanf(f, "%d", &pid); err == nil && !seen[pid] {
				seen[pid] = true
				pids = append(pids, pid)
			}
		}
	}
	return pids
}

// killPodProcesses SIGKILLs whatever still runs in pod cgroups (only ever
// after the CRI failed to stop the sandboxes).
func killPodProcesses() {
	for _, pid := range PodProcesses() {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

// removePodCgroups removes the kubelet's now-empty cgroup directories.
func removePodCgroups() {
	for _, dir := range podCgroupDirs() {
		_ = os.Remove(dir)
	}
}

// removeContainerLogLinks removes the kubelet's symlinks in
// /var/log/containers that point into the cluster's pod log directory.
func removeContainerLogLinks(podLogs string) {
	entries, err := os.ReadDir("/var/log/containers")
	if err != nil {
		return
	}
	for _, e := range entries {
		p := filepath.Join("/var/log/containers", e.Name())
		if target, err := os.Readlink(p); err == nil && strings.HasPrefix(target, podLogs+"/") {
			_ = os.Remove(p)
		}
	}
}

// removeEmptyTree removes root if it holds nothing but directories and
// sockets (what the kubelet leaves in its fixed device-plugin directory);
// anything else someone put there keeps it.
func removeEmptyTree(root string) {
	var paths []string
	_ = filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err == nil {
			paths = append(paths, path)
		}
		return nil
	})
	sort.Slice(paths, func(i, j int) bool { return len(paths[i]) > len(paths[j]) })
	for _, p := range paths {
		st, err := os.Lstat(p)
		if err != nil {
			continue
		}
		if st.IsDir() || st.Mode()&os.ModeSocket != 0 {
			_ = os.Remove(p) // fails, harmlessly, on a non-empty directory
		}
	}
}
