package kubeharness

import "strings"

// MountsBelow returns the mount points of this mount namespace equal to or
// below any of the given prefixes (a prefix ending in "-" matches names
// starting with it). Tests use it to prove Stop left no mount behind.
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
