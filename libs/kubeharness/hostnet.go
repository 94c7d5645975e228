package kubeharness

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Chains the harness owns. Node mode is exclusive on a machine, so every
// chain with one of these prefixes belongs to it: KUBE- (kubelet and
// kube-proxy), CNI- (CNI plugins) and KUBEHARNESS- (the guards).
var ownedChainPrefixes = []string{"KUBEHARNESS-", "KUBE-", "CNI-"}

const (
	guardForwardChain = "KUBEHARNESS-FORWARD"
	guardInputChain   = "KUBEHARNESS-INPUT"
)

// guardRules returns the iptables commands (mangle table) that keep pod
// traffic on this machine: nothing is forwarded between the pod bridge and any
// other interface in either direction, and the node IP answers only on
// loopback and the bridge. The mangle table runs before the filter table,
// where kube-proxy's ACCEPT rules live, so the guards cannot be bypassed.
func guardRules(bridge, nodeIP string) [][]string {
	m := func(args ...string) []string { return append([]string{"-w", "-t", "mangle"}, args...) }
	return [][]string{
		m("-N", guardForwardChain),
		m("-A", guardForwardChain, "-i", bridge, "!", "-o", bridge, "-j", "DROP"),
		m("-A", guardForwardChain, "!", "-i", bridge, "-o", bridge, "-j", "DROP"),
		m("-I", "FORWARD", "1", "-j", guardForwardChain),
		m("-N", guardInputChain),
		m("-A", guardInputChain, "-i", "lo", "-j", "RETURN"),
		m("-A", guardInputChain, "-i", bridge, "-j", "RETURN"),
		m("-A", guardInputChain, "-d", nodeIP+"/32", "-j", "DROP"),
		m("-I", "INPUT", "1", "-j", guardInputChain),
	}
}

func installGuards(bridge, nodeIP string) error {
	for _, args := range guardRules(bridge, nodeIP) {
		if err := run("iptables", args...); err != nil {
			return fmt.Errorf("failed to install pod traffic guard: %w", err)
		}
	}
	return nil
}

// removeChains deletes every owned chain from every table of iptables and
// ip6tables, with the rules in other chains that jump to them.
// A rule or chain that vanished meanwhile (another cleanup, kube-proxy's
// last sync) is not an error: only chains still present afterwards are.
func removeChains() error {
	var errs []error
	for _, tool := range []string{"iptables", "ip6tables"} {
		for _, table := range []string{"raw", "mangle", "nat", "filter"} {
			err := removeChainsIn(tool, table)
			if err == nil {
				continue
			}
			if left := ownedChainsIn(tool, table); len(left) > 0 {
				errs = append(errs, fmt.Errorf("%s table %s still has %v: %w", tool, table, left, err))
			}
		}
	}
	return errors.Join(errs...)
}

func ownedChainsIn(tool, table string) []string {
	out, err := exec.Command(tool+"-save", "-t", table).Output() //nolint:gosec // tool is iptables or ip6tables
	if err != nil {
		return nil
	}
	_, chains := ownedRules(string(out))
	return chains
}

func removeChainsIn(tool, table string) error {
	out, err := exec.Command(tool+"-save", "-t", table).Output() //nolint:gosec // tool is iptables or ip6tables
	if err != nil {
		// A table that was never created cannot be dumped: nothing to remove.
		return nil
	}
	jumps, chains := ownedRules(string(out))
	var errs []error
	for _, rule := range jumps {
		args := append([]string{"-w", "-t", table, "-D"}, rule...)
		if err := run(tool, args...); err != nil {
			errs = append(errs, err)
		}
	}
	for _, chain := range chains {
		if err := run(tool, "-w", "-t", table, "-F", chain); err != nil {
			errs = append(errs, err)
		}
	}
	for _, chain := range chains {
		if err := run(tool, "-w", "-t", table, "-X", chain); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// ownedRules parses iptables-save output and returns the rules of built-in
// chains that jump to owned chains (as "CHAIN spec..." argument lists for -D)
// and the owned chains.
func ownedRules(save string) (jumps [][]string, chains []string) {
	sc := bufio.NewScanner(strings.NewReader(save))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, ":"):
			name := strings.Fields(line[1:])[0]
			if isOwnedChain(name) {
				chains = append(chains, name)
			}
		case strings.HasPrefix(line, "-A "):
			fields := splitRule(line[3:])
			if len(fields) == 0 || isOwnedChain(fields[0]) {
				continue
			}
			for i := 0; i+1 < len(fields); i++ {
				if (fields[i] == "-j" || fields[i] == "-g") && isOwnedChain(fields[i+1]) {
					jumps = append(jumps, fields)
					break
				}
			}
		}
	}
	return jumps, chains
}

func isOwnedChain(name string) bool {
	for _, p := range ownedChainPrefixes {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// splitRule splits an iptables-save rule into arguments, honouring the
// double quotes iptables-save puts around comments.
func splitRule(s string) []string {
	var out []string
	var cur strings.Builder
	inQuote, escaped, has := false, false, false
	for _, r := range s {
		switch {
		case escaped:
			cur.WriteRune(r)
			escaped = false
		case r == '\\':
			escaped = true
		case r == '"':
			inQuote = !inQuote
			has = true
		case r == ' ' && !inQuote:
			if has || cur.Len() > 0 {
				out = append(out, cur.String())
				cur.Reset()
				has = false
			}
		default:
			cur.WriteRune(r)
		}
	}
	if has || cur.Len() > 0 {
		out = append(out, cur.String())
	}
	return out
}

// deleteBridge removes the bridge and any veth still attached to it.
func deleteBridge(bridge string) error {
	if _, err := net.InterfaceByName(bridge); err != nil {
		return nil
	}
	out, err := exec.Command("ip", "-o", "link", "show", "master", bridge).Output() //nolint:gosec // the harness's own bridge name
	if err == nil {
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			f := strings.Fields(line)
			if len(f) < 2 {
				continue
			}
			name, _, _ := strings.Cut(strings.TrimSuffix(f[1], ":"), "@")
			_ = run("ip", "link", "del", name)
		}
	}
	return run("ip", "link", "del", bridge)
}

// mountPoints returns the mount points of this mount namespace.
func mountPoints() ([]string, error) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("failed to read mountinfo: %w", err)
	}
	return parseMountPoints(data), nil
}

// parseMountPoints extracts the mount point (fifth field, octal-escaped) of
// each mountinfo line.
func parseMountPoints(data []byte) []string {
	var out []string
	for _, line := range bytes.Split(data, []byte("\n")) {
		f := strings.Fields(string(line))
		if len(f) < 5 {
			continue
		}
		out = append(out, unescapeMountPath(f[4]))
	}
	return out
}

func unescapeMountPath(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var v byte
			if _, err := fmt.Sscanf(s[i+1:i+4], "%03o", &v); err == nil {
				b.WriteByte(v)
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// MountsBelow returns the mount points equal to or below any of the given
// prefixes (a prefix ending in "-" matches names starting with it). Tests use
// it to prove Stop left no mount behind.
func MountsBelow(prefixes ...string) ([]string, error) {
	all, err := mountPoints()
	if err != nil {
		return nil, err
	}
	return filterMounts(all, prefixes), nil
}

func filterMounts(all, prefixes []string) []string {
	var out []string
	for _, mp := range all {
		for _, p := range prefixes {
			if p == "" {
				continue
			}
			if mp == p || strings.HasPrefix(mp, strings.TrimSuffix(p, "/")+"/") ||
				(strings.HasSuffix(p, "-") && strings.HasPrefix(mp, p)) {
				out = append(out, mp)
				break
			}
		}
	}
	return out
}

// unmountBelow unmounts everything below the prefixes, deepest first,
// repeating for stacked mounts; a busy mount is detached.
func unmountBelow(prefixes ...string) error {
	for range 10 {
		mps, err := MountsBelow(prefixes...)
		if err != nil {
			return err
		}
		if len(mps) == 0 {
			return nil
		}
		sort.Slice(mps, func(i, j int) bool { return len(mps[i]) > len(mps[j]) })
		for _, mp := range mps {
			if err := unix.Unmount(mp, 0); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOENT) {
				_ = unix.Unmount(mp, unix.MNT_DETACH)
			}
		}
	}
	mps, err := MountsBelow(prefixes...)
	if err != nil {
		return err
	}
	if len(mps) > 0 {
		return fmt.Errorf("failed to unmount %v", mps)
	}
	return nil
}

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
