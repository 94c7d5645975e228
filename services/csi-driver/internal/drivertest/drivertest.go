// Package drivertest holds what the driver's tests share: the hostile-input
// list (used by unit tests with a fake mounter, by host integration tests
// with real mounts and as the fuzz corpus seed), a valid request builder,
// temporary kubelet directories that unmount what a test left, and the root
// check. Like net/http/httptest it is test code: only _test.go files and the
// test module import it.
package drivertest

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/meshcsi/meshcsi/libs/roottest"
)

// PodUID is the pod directory used by the requests built here.
const PodUID = "0b6f7c3e-7d0c-4c7e-9c57-1b2d3c4d5e6f"

// Source names the configured source of the requests built here.
const Source = "agent"

// MissingSource names a configured source whose directory does not exist.
const MissingSource = "gone"

// RequireRoot is roottest.Require for the driver's tests that make real
// mounts: a failure when CI=true, a skip naming `make test` as root otherwise.
func RequireRoot(t testing.TB) {
	t.Helper()
	roottest.Require(t, "this test (it makes real mounts)")
}

// Target returns the target path the kubelet would pass for volume vol.
func Target(kubeletDir, vol string) string {
	return filepath.Join(kubeletDir, "pods", PodUID, "volumes", "kubernetes.io~csi", vol, "mount")
}

// Publish returns a valid publish request for vol, as the kubelet sends it
// for an inline volume of a CSIDriver with podInfoOnMount: true.
func Publish(kubeletDir, vol string) *csi.NodePublishVolumeRequest {
	return &csi.NodePublishVolumeRequest{
		VolumeId:   "csi-" + vol,
		TargetPath: Target(kubeletDir, vol),
		VolumeCapability: &csi.VolumeCapability{
			AccessType: &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{}},
			AccessMode: &csi.VolumeCapability_AccessMode{Mode: csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER},
		},
		Readonly: true,
		VolumeContext: map[string]string{
			"csi.storage.k8s.io/ephemeral":           "true",
			"csi.storage.k8s.io/pod.name":            "app-0",
			"csi.storage.k8s.io/pod.namespace":       "default",
			"csi.storage.k8s.io/pod.uid":             PodUID,
			"csi.storage.k8s.io/serviceAccount.name": "default",
			"source":                                 Source,
		},
	}
}

// Case is one hostile or wrong publish request.
type Case struct {
	// Name describes the case.
	Name string
	// Mutate turns a valid request for volume "vol" into the hostile one.
	Mutate func(kubeletDir string, r *csi.NodePublishVolumeRequest)
	// Code is the expected gRPC code.
	Code codes.Code
	// Field must appear in the error message.
	Field string
	// Symlink, when set, is a path relative to the pods directory that the
	// test must create as a symbolic link to an outside directory first.
	Symlink string
}

func setTarget(rel string) func(string, *csi.NodePublishVolumeRequest) {
	return func(kd string, r *csi.NodePublishVolumeRequest) { r.TargetPath = kd + rel }
}

func setContext(k, v string) func(string, *csi.NodePublishVolumeRequest) {
	return func(_ string, r *csi.NodePublishVolumeRequest) { r.VolumeContext[k] = v }
}

func mountCap(m *csi.VolumeCapability_MountVolume) func(string, *csi.NodePublishVolumeRequest) {
	return func(_ string, r *csi.NodePublishVolumeRequest) {
		r.VolumeCapability.AccessType = &csi.VolumeCapability_Mount{Mount: m}
	}
}

const vdir = "/pods/" + PodUID + "/volumes/kubernetes.io~csi"

// Hostile is the list of requests the driver must refuse without leaving a
// mount or a directory behind, one case per rule.
func Hostile() []Case {
	return []Case{
		{Name: "missing volume_id", Code: codes.InvalidArgument, Field: "volume_id",
			Mutate: func(_ string, r *csi.NodePublishVolumeRequest) { r.VolumeId = "" }},
		{Name: "missing target_path", Code: codes.InvalidArgument, Field: "target_path",
			Mutate: func(_ string, r *csi.NodePublishVolumeRequest) { r.TargetPath = "" }},
		{Name: "missing volume_capability", Code: codes.InvalidArgument, Field: "volume_capability",
			Mutate: func(_ string, r *csi.NodePublishVolumeRequest) { r.VolumeCapability = nil }},
		{Name: "relative target", Code: codes.InvalidArgument, Field: "target_path",
			Mutate: func(kd string, r *csi.NodePublishVolumeRequest) { r.TargetPath = r.TargetPath[1:] }},
		{Name: "target with ..", Code: codes.InvalidArgument, Field: "target_path",
			Mutate: setTarget(vdir + "/vol/../../../../../etc/mount")},
		{Name: "target with .", Code: codes.InvalidArgument, Field: "target_path",
			Mutate: setTarget(vdir + "/./vol/mount")},
		{Name: "target with //", Code: codes.InvalidArgument, Field: "target_path",
			Mutate: setTarget(vdir + "//vol/mount")},
		{Name: "target with trailing /", Code: codes.InvalidArgument, Field: "target_path",
			Mutate: setTarget(vdir + "/vol/mount/")},
		{Name: "target with NUL byte", Code: codes.InvalidArgument, Field: "target_path",
			Mutate: setTarget(vdir + "/vol/mo\x00unt")},
		{Name: "target outside pods dir", Code: codes.InvalidArgument, Field: "target_path",
			Mutate: setTarget("/plugins/vol/mount")},
		{Name: "target in a sibling with the pods prefix", Code: codes.InvalidArgument, Field: "target_path",
			Mutate: setTarget("/pods-evil/" + PodUID + "/vol/mount")},
		{Name: "target is a pod directory", Code: codes.InvalidArgument, Field: "target_path",
			Mutate: setTarget("/pods/" + PodUID)},
		{Name: "symlink in the middle of the target path", Code: codes.InvalidArgument, Field: "target_path",
			Symlink: PodUID + "/volumes/link",
			Mutate:  setTarget("/pods/" + PodUID + "/volumes/link/vol/mount")},
		{Name: "target is a symlink", Code: codes.InvalidArgument, Field: "target_path",
			Symlink: PodUID + "/volumes/kubernetes.io~csi/vol/link",
			Mutate:  setTarget(vdir + "/vol/link")},
		{Name: "block access type", Code: codes.InvalidArgument, Field: "volume_capability.block",
			Mutate: func(_ string, r *csi.NodePublishVolumeRequest) {
				r.VolumeCapability.AccessType = &csi.VolumeCapability_Block{Block: &csi.VolumeCapability_BlockVolume{}}
			}},
		{Name: "fs_type", Code: codes.InvalidArgument, Field: "volume_capability.mount.fs_type",
			Mutate: mountCap(&csi.VolumeCapability_MountVolume{FsType: "ext4"})},
		{Name: "mount flags", Code: codes.InvalidArgument, Field: "volume_capability.mount.mount_flags",
			Mutate: mountCap(&csi.VolumeCapability_MountVolume{MountFlags: []string{"rw", "suid"}})},
		{Name: "volume mount group", Code: codes.InvalidArgument, Field: "volume_capability.mount.volume_mount_group",
			Mutate: mountCap(&csi.VolumeCapability_MountVolume{VolumeMountGroup: "0"})},
		{Name: "missing access mode", Code: codes.InvalidArgument, Field: "volume_capability.access_mode",
			Mutate: func(_ string, r *csi.NodePublishVolumeRequest) { r.VolumeCapability.AccessMode = nil }},
		{Name: "staging target path", Code: codes.InvalidArgument, Field: "staging_target_path",
			Mutate: func(kd string, r *csi.NodePublishVolumeRequest) { r.StagingTargetPath = kd + "/plugins/staging" }},
		{Name: "non-ephemeral volume", Code: codes.InvalidArgument, Field: "csi.storage.k8s.io/ephemeral",
			Mutate: func(_ string, r *csi.NodePublishVolumeRequest) {
				delete(r.VolumeContext, "csi.storage.k8s.io/ephemeral")
			}},
		{Name: "ephemeral false", Code: codes.InvalidArgument, Field: "csi.storage.k8s.io/ephemeral",
			Mutate: setContext("csi.storage.k8s.io/ephemeral", "false")},
		{Name: "unknown source", Code: codes.InvalidArgument, Field: "volume_context[source]",
			Mutate: setContext("source", "nope")},
		{Name: "source is an absolute path", Code: codes.InvalidArgument, Field: "volume_context[source]",
			Mutate: setContext("source", "/etc")},
		{Name: "source is a relative path", Code: codes.InvalidArgument, Field: "volume_context[source]",
			Mutate: setContext("source", "../../etc")},
		{Name: "source is a dot name", Code: codes.InvalidArgument, Field: "volume_context[source]",
			Mutate: setContext("source", "..")},
		{Name: "attribute names a host path", Code: codes.InvalidArgument, Field: "volume_context[\"path\"]",
			Mutate: setContext("path", "/etc")},
		{Name: "attribute hostPath", Code: codes.InvalidArgument, Field: "volume_context[\"hostPath\"]",
			Mutate: setContext("hostPath", "/var/run/docker.sock")},
		{Name: "attribute with the kubelet's prefix names a host path", Code: codes.InvalidArgument, Field: "volume_context[\"csi.storage.k8s.io/hostPath\"]",
			Mutate: setContext("csi.storage.k8s.io/hostPath", "/etc")},
		{Name: "readonly false", Code: codes.InvalidArgument, Field: "readOnly: true",
			Mutate: func(_ string, r *csi.NodePublishVolumeRequest) { r.Readonly = false }},
		{Name: "access mode outside the spec", Code: codes.InvalidArgument, Field: "volume_capability.access_mode",
			Mutate: func(_ string, r *csi.NodePublishVolumeRequest) { r.VolumeCapability.AccessMode.Mode = 99 }},
		{Name: "target of another volume type", Code: codes.InvalidArgument, Field: "target_path",
			Mutate: setTarget("/pods/" + PodUID + "/volumes/kubernetes.io~secret/vol/mount")},
		{Name: "target component of 256 bytes", Code: codes.InvalidArgument, Field: "target_path",
			Mutate: setTarget(vdir + "/" + strings.Repeat("v", 256) + "/mount")},
		{Name: "target longer than a path may be", Code: codes.InvalidArgument, Field: "target_path",
			Mutate: setTarget(vdir + "/vol/" + strings.Repeat("m/", 2100) + "mount")},
		{Name: "source directory missing", Code: codes.FailedPrecondition, Field: "volume_context[source]",
			Mutate: setContext("source", MissingSource)},
	}
}

// KubeletDir makes a temporary kubelet directory with a pods directory and
// the parent of the target for volumes vols (the kubelet creates that
// parent), and registers a cleanup that unmounts everything left below it,
// so a failing test never leaves a mount behind.
func KubeletDir(t testing.TB, vols ...string) string {
	t.Helper()
	dir := TempDir(t, "kd")
	for _, v := range vols {
		if err := os.MkdirAll(filepath.Dir(Target(dir, v)), 0o750); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(dir, "pods"), 0o750); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TempDir makes a short-named temporary directory (Unix socket paths are
// limited to 107 bytes, too short for t.TempDir under a long test name). Its
// cleanup first unmounts everything below it and removes it only when no
// mount is left, so a failing test can never delete through a bind mount.
func TempDir(t testing.TB, prefix string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "meshcsi-"+prefix+"-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		UnmountBelow(t, dir)
		if len(MountsBelow(t, dir)) == 0 {
			_ = os.RemoveAll(dir)
		}
	})
	return dir
}

// ServeTimeout is the generous deadline tests give a driver to start serving:
// a correctness test must not fail because the machine is busy.
const ServeTimeout = 60 * time.Second

// WaitServing blocks until the CSI server at endpoint answers Probe: the
// gRPC client waits for the connection to become ready (the server is then
// serving both its sockets), so no test polls the file system for a socket.
func WaitServing(t testing.TB, endpoint string) {
	t.Helper()
	conn, err := grpc.NewClient("unix://"+endpoint, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), ServeTimeout)
	defer cancel()
	if _, err := csi.NewIdentityClient(conn).Probe(ctx, &csi.ProbeRequest{}, grpc.WaitForReady(true)); err != nil {
		t.Fatalf("the driver did not serve on %s: %v", endpoint, err)
	}
}
