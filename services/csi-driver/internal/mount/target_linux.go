//go:build linux

package mount

import (
	"fmt"
	"strings"
)

// target is a target path split as the kubelet lays it out.
type target struct {
	path   string // as passed
	parent string // <pod-uid>/volumes/kubernetes.io~csi/<name>, relative to the pods directory
	leaf   string // the last component ("mount" for the kubelet)
}

// splitTarget checks that path is <podsDir>/<pod-uid>/volumes/kubernetes.io~csi/<name>/<leaf>
// within the length limits and splits it.
func splitTarget(podsDir, path string) (target, error) {
	if len(path) > MaxPath {
		return target{}, fmt.Errorf("%w: %w: %d bytes, at most %d", ErrInvalidTarget, ErrNameTooLong, len(path), MaxPath)
	}
	rel, ok := strings.CutPrefix(path, podsDir+"/")
	if !ok {
		return target{}, fmt.Errorf("%w: not below %s", ErrInvalidTarget, podsDir)
	}
	comps := strings.Split(rel, "/")
	for i, c := range comps {
		switch {
		case c == "" || c == "." || c == "..":
			return target{}, fmt.Errorf("%w: component %d is %q", ErrInvalidTarget, i+1, c)
		case len(c) > MaxComponent:
			return target{}, fmt.Errorf("%w: %w: a component of %d bytes, at most %d", ErrInvalidTarget, ErrNameTooLong, len(c), MaxComponent)
		case strings.ContainsRune(c, 0):
			return target{}, fmt.Errorf("%w: NUL byte", ErrInvalidTarget)
		}
	}
	if len(comps) != 5 || comps[1] != "volumes" || comps[2] != "kubernetes.io~csi" {
		return target{}, fmt.Errorf("%w: want %s/<pod-uid>/volumes/kubernetes.io~csi/<volume>/mount", ErrInvalidTarget, podsDir)
	}
	return target{path: path, parent: strings.Join(comps[:4], "/"), leaf: comps[4]}, nil
}
