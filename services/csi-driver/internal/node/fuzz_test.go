package node

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	tc "github.com/meshcsi/meshcsi/services/csi-driver/internal/drivertest"
)

// FuzzPublishValidation feeds mutated publish requests (seeded with the
// hostile list) through NodePublishVolume with a fake mounter. Whatever the
// input, a refused request must leave nothing mounted, and an accepted one
// must name a clean target of the kubelet's CSI layout, a configured source
// the pod's namespace may use, readonly and an access mode of the spec.
func FuzzPublishValidation(f *testing.F) {
	for _, c := range tc.Hostile() {
		r := tc.Publish(kd, "vol")
		c.Mutate(kd, r)
		src, hasSrc := r.VolumeContext["source"]
		extraKey, extraVal := "", ""
		for k, v := range r.VolumeContext {
			if k != "source" && !kubeletKeys[k] {
				extraKey, extraVal = k, v
			}
		}
		block := r.GetVolumeCapability().GetBlock() != nil
		fsType := r.GetVolumeCapability().GetMount().GetFsType()
		f.Add(r.VolumeId, r.TargetPath, r.StagingTargetPath, src, hasSrc, r.VolumeContext["csi.storage.k8s.io/ephemeral"],
			extraKey, extraVal, r.VolumeCapability == nil, block, fsType,
			r.Readonly, int32(r.GetVolumeCapability().GetAccessMode().GetMode()), r.VolumeContext[KeyPodNamespace])
	}
	// The namespace options of source "other".
	for _, ns := range []string{"allowed", "team-a", "team-b", "default", ""} {
		r := tc.Publish(kd, "vol")
		f.Add(r.VolumeId, r.TargetPath, "", "other", true, "true", "", "", false, false, "", true, int32(1), ns)
	}
	f.Fuzz(func(t *testing.T, volumeID, target, staging, source string, hasSource bool, ephemeral,
		extraKey, extraVal string, noCap, block bool, fsType string, readonly bool, mode int32, namespace string) {
		fx := newFixture(t)
		r := tc.Publish(kd, "vol")
		r.VolumeId, r.TargetPath, r.StagingTargetPath = volumeID, target, staging
		r.Readonly = readonly
		r.VolumeContext[KeyPodNamespace] = namespace
		r.VolumeContext["csi.storage.k8s.io/ephemeral"] = ephemeral
		delete(r.VolumeContext, "source")
		if hasSource {
			r.VolumeContext["source"] = source
		}
		if extraKey != "" {
			r.VolumeContext[extraKey] = extraVal
		}
		switch {
		case noCap:
			r.VolumeCapability = nil
		case block:
			r.VolumeCapability.AccessType = &csi.VolumeCapability_Block{Block: &csi.VolumeCapability_BlockVolume{}}
		default:
			r.VolumeCapability.GetMount().FsType = fsType
			r.VolumeCapability.AccessMode.Mode = csi.VolumeCapability_AccessMode_Mode(mode)
		}
		_, err := fx.svc.NodePublishVolume(context.Background(), r)
		if err != nil {
			if st, ok := status.FromError(err); !ok || st.Code() == codes.OK || st.Code() == codes.Unknown {
				t.Fatalf("error without a proper status: %v", err)
			}
			if fx.fake.Publishes != 0 || len(fx.fake.Dirs) != 0 {
				t.Fatalf("refused request left state: %v", fx.fake.Mounts)
			}
			return
		}
		parts := strings.Split(strings.TrimPrefix(target, kd+"/pods/"), "/")
		if filepath.Clean(target) != target || !strings.HasPrefix(target, kd+"/pods/") ||
			len(parts) != 5 || parts[1] != "volumes" || parts[2] != "kubernetes.io~csi" {
			t.Fatalf("accepted target %q", target)
		}
		if !readonly {
			t.Fatal("accepted readonly=false")
		}
		if _, ok := csi.VolumeCapability_AccessMode_Mode_name[mode]; !ok || mode == 0 {
			t.Fatalf("accepted access mode %d", mode)
		}
		if source == "other" && namespace != "allowed" && namespace != "team-a" {
			t.Fatalf("accepted source other from namespace %q", namespace)
		}
		if hasSource && source != "" && source != tc.Source && source != "other" {
			t.Fatalf("accepted source %q", source)
		}
		if ephemeral != "true" || noCap || block || fsType != "" || staging != "" || volumeID == "" {
			t.Fatalf("accepted an invalid request: %+v", r)
		}
		for k := range r.VolumeContext {
			if k != "source" && !kubeletKeys[k] {
				t.Fatalf("accepted attribute %q", k)
			}
		}
	})
}
