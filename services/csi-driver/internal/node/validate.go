package node

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/container-storage-interface/spec/lib/go/csi"

	"github.com/meshcsi/meshcsi/services/csi-driver/internal/config"
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
	// maxVolumeID and maxPath bound the input the driver looks at.
	maxVolumeID = 128
	maxPath     = 4096
)

// Sentinel errors map to gRPC codes at the edge.
var (
	// ErrInvalid maps to InvalidArgument.
	ErrInvalid = errors.New("invalid argument")
	// ErrPrecondition maps to FailedPrecondition.
	ErrPrecondition = errors.New("failed precondition")
	// ErrExists maps to AlreadyExists.
	ErrExists = errors.New("already exists")
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

func invalid(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, a...))
}

// publishRequest is a NodePublishVolumeRequest that passed validation.
type publishRequest struct {
	volumeID  string
	target    string
	source    string
	sourceDir string
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
	if req.GetStagingTargetPath() != "" {
		return p, invalid("staging_target_path must be empty: the driver has no stage step")
	}
	ctx := req.GetVolumeContext()
	if ctx[KeyEphemeral] != "true" {
		return p, invalid("volume_context[%s] must be \"true\": only CSI ephemeral inline volumes are supported (CSIDriver needs podInfoOnMount: true)", KeyEphemeral)
	}
	for k := range ctx {
		if k != KeySource && !kubeletKeys[k] {
			return p, invalid("volume_context[%q] is not supported: a volume may set only %q (and %s keys are the kubelet's)", truncate(k), KeySource, kubeletPrefix)
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
		return p, invalid("volume_context[%s] %q looks like a path: name a configured source instead", KeySource, truncate(name))
	case !config.IsSourceName(name):
		return p, invalid("volume_context[%s] %q is not a valid source name", KeySource, truncate(name))
	}
	dir, ok := s.sources[name]
	if !ok {
		return p, invalid("volume_context[%s] %q is not a configured source", KeySource, name)
	}
	return publishRequest{volumeID: req.GetVolumeId(), target: target, source: name, sourceDir: dir}, nil
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
	case len(t) > maxPath:
		return "", invalid("target_path is longer than %d bytes", maxPath)
	case strings.ContainsRune(t, 0):
		return "", invalid("target_path contains a NUL byte")
	case !filepath.IsAbs(t):
		return "", invalid("target_path %q must be absolute", truncate(t))
	case filepath.Clean(t) != t:
		return "", invalid("target_path %q must be clean (no '.', '..', '//' or trailing '/')", truncate(t))
	}
	rel, ok := strings.CutPrefix(t, s.podsDir+"/")
	if !ok {
		return "", invalid("target_path %q must be below %s", truncate(t), s.podsDir)
	}
	if !strings.Contains(rel, "/") {
		return "", invalid("target_path %q must be inside a pod's directory below %s", truncate(t), s.podsDir)
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
	if c.GetAccessMode().GetMode() == csi.VolumeCapability_AccessMode_UNKNOWN {
		return invalid("volume_capability.access_mode is required")
	}
	return nil
}

// looksLikePath catches attempts to name a host path instead of a source.
func looksLikePath(s string) bool {
	return strings.ContainsAny(s, `/\`) || strings.HasPrefix(s, ".") || strings.HasPrefix(s, "~")
}

// truncate keeps hostile input out of error messages and logs in bulk.
func truncate(s string) string {
	const n = 256
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
