package node

import (
	"path/filepath"
	"strings"

	"github.com/container-storage-interface/spec/lib/go/csi"

	"github.com/meshcsi/meshcsi/services/csi-driver/internal/config"
	"github.com/meshcsi/meshcsi/services/csi-driver/internal/logfield"
	"github.com/meshcsi/meshcsi/services/csi-driver/internal/mount"
)

// Volume context keys the kubelet sets for an inline volume of a CSIDriver
// with podInfoOnMount: true.
const (
	KeyEphemeral    = "csi.storage.k8s.io/ephemeral"
	KeyPodName      = "csi.storage.k8s.io/pod.name"
	KeyPodNamespace = "csi.storage.k8s.io/pod.namespace"
	// KeySource is the only key a pod sets: the name of a configured source.
	KeySource = "source"
	// kubeletPrefix marks the keys the kubelet writes.
	kubeletPrefix = "csi.storage.k8s.io/"
	// csiPluginDir is the kubelet's directory for CSI volumes in a pod.
	csiPluginDir = "kubernetes.io~csi"
	// maxVolumeID bounds the volume ID the driver looks at; target paths
	// are bounded by the mount package's limits, the same for publish and
	// unpublish, so whatever publish accepts unpublish can undo.
	maxVolumeID = 128
)

// kubeletKeys are the volume context keys the kubelet sets (podInfoOnMount,
// ephemeral, tokenRequests). The kubelet passes a pod's own volumeAttributes
// through and overwrites only these, so a pod can set any other key with
// the kubelet's prefix: such a key is refused like any other attribute.
var kubeletKeys = map[string]bool{
	KeyEphemeral:                            true,
	KeyPodName:                              true,
	KeyPodNamespace:                         true,
	kubeletPrefix + "pod.uid":               true,
	kubeletPrefix + "serviceAccount.name":   true,
	kubeletPrefix + "serviceAccount.tokens": true,
}

// publishRequest is a NodePublishVolumeRequest that passed validation.
type publishRequest struct {
	volumeID  string
	target    string
	source    string
	namespace string
}

// validatePublish checks a publish request without touching the host. The
// error names the offending field.
func (s *Service) validatePublish(req *csi.NodePublishVolumeRequest) (publishRequest, error) {
	var p publishRequest
	if err := validateVolumeID(req.GetVolumeId()); err != nil {
		return p, err
	}
	target, err := s.validateTarget(req.GetTargetPath())
	if err != nil {
		return p, err
	}
	if err := validateCapability(req.GetVolumeCapability()); err != nil {
		return p, err
	}
	if !req.GetReadonly() {
		return p, invalid("readonly must be true: the driver publishes sockets read-only; set readOnly: true on the pod's csi volume")
	}
	if req.GetStagingTargetPath() != "" {
		return p, invalid("staging_target_path must be empty: the driver has no stage step")
	}
	ctx := req.GetVolumeContext()
	if ctx[KeyEphemeral] != "true" {
		return p, invalid("volume_context[%s] must be \"true\": only CSI ephemeral inline volumes are supported (CSIDriver needs podInfoOnMount: true)", KeyEphemeral)
	}
	for k := range ctx {
		if k != KeySource && !kubeletKeys[k] {
			return p, invalid("volume_context[%q] is not supported: a volume may set only %q (and %s keys are the kubelet's)", logfield.Bound(k), KeySource, kubeletPrefix)
		}
	}
	name, named := ctx[KeySource]
	switch {
	case !named || name == "":
		if s.defaultSource == "" {
			return p, invalid("volume_context[%s] is required: no default source is configured", KeySource)
		}
		name = s.defaultSource
	case looksLikePath(name):
		return p, invalid("volume_context[%s] %q looks like a path: name a configured source instead", KeySource, logfield.Bound(name))
	case !config.IsSourceName(name):
		return p, invalid("volume_context[%s] %q is not a valid source name", KeySource, logfield.Bound(name))
	}
	if _, ok := s.sources[name]; !ok {
		return p, invalid("volume_context[%s] %q is not a configured source", KeySource, name)
	}
	return publishRequest{volumeID: req.GetVolumeId(), target: target, source: name, namespace: ctx[KeyPodNamespace]}, nil
}

func validateVolumeID(id string) error {
	switch {
	case id == "":
		return invalid("volume_id is required")
	case len(id) > maxVolumeID:
		return invalid("volume_id is longer than %d bytes", maxVolumeID)
	case strings.ContainsFunc(id, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return invalid("volume_id contains control characters")
	}
	return nil
}

// validateTarget checks the target lexically: a clean absolute path inside a
// pod's directory below the pods directory. Symbolic links are refused by the
// mounter, which walks the real path.
func (s *Service) validateTarget(t string) (string, error) {
	switch {
	case t == "":
		return "", invalid("target_path is required")
	case len(t) > mount.MaxPath:
		return "", invalid("target_path is longer than %d bytes", mount.MaxPath)
	case strings.ContainsRune(t, 0):
		return "", invalid("target_path contains a NUL byte")
	case !filepath.IsAbs(t):
		return "", invalid("target_path %q must be absolute", logfield.Bound(t))
	case filepath.Clean(t) != t:
		return "", invalid("target_path %q must be clean (no '.', '..', '//' or trailing '/')", logfield.Bound(t))
	}
	rel, ok := strings.CutPrefix(t, s.podsDir+"/")
	if !ok {
		return "", invalid("target_path %q must be below %s", logfield.Bound(t), s.podsDir)
	}
	// The kubelet's layout for a CSI volume:
	// <pods>/<pod-uid>/volumes/kubernetes.io~csi/<volume>/mount. Checked
	// here without touching the host; the mounter checks it again on the
	// descriptors it walks.
	parts := strings.Split(rel, "/")
	if len(parts) != 5 || parts[1] != "volumes" || parts[2] != csiPluginDir {
		return "", invalid("target_path %q must be a CSI volume directory of a pod: %s/<pod-uid>/volumes/%s/<volume>/mount", logfield.Bound(t), s.podsDir, csiPluginDir)
	}
	for _, c := range parts {
		if len(c) > mount.MaxComponent {
			return "", invalid("target_path %q has a component longer than %d bytes", logfield.Bound(t), mount.MaxComponent)
		}
	}
	return t, nil
}

func validateCapability(c *csi.VolumeCapability) error {
	if c == nil {
		return invalid("volume_capability is required")
	}
	if c.GetBlock() != nil {
		return invalid("volume_capability.block is not supported: use mount")
	}
	m := c.GetMount()
	if m == nil {
		return invalid("volume_capability.mount is required")
	}
	if m.GetFsType() != "" {
		return invalid("volume_capability.mount.fs_type must be empty: the driver bind-mounts a directory")
	}
	if len(m.GetMountFlags()) > 0 {
		return invalid("volume_capability.mount.mount_flags must be empty: the mount is always ro,nosuid,nodev,noexec")
	}
	if m.GetVolumeMountGroup() != "" {
		return invalid("volume_capability.mount.volume_mount_group must be empty")
	}
	mode := c.GetAccessMode().GetMode()
	if mode == csi.VolumeCapability_AccessMode_UNKNOWN {
		return invalid("volume_capability.access_mode is required")
	}
	if _, ok := csi.VolumeCapability_AccessMode_Mode_name[int32(mode)]; !ok {
		return invalid("volume_capability.access_mode %d is not a mode of the CSI spec", int32(mode))
	}
	return nil
}

// looksLikePath catches attempts to name a host path instead of a source.
func looksLikePath(s string) bool {
	return strings.ContainsAny(s, `/\`) || strings.HasPrefix(s, ".") || strings.HasPrefix(s, "~")
}
