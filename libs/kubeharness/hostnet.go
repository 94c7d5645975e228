package kubeharness

// The host network side of Node mode: the iptables guards that keep pod
// traffic on this machine, and the removal of the chains, bridge and veths
// the cluster leaves behind.

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"strings"
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
