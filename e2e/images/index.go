package images

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/meshcsi/meshcsi/libs/kubeharness/image"
)

// Platforms are the platforms `make images` builds.
var Platforms = []v1.Platform{{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "arm64"}}

// Built is the result of BuildIndex for one image.
type Built struct {
	Image Image
	// Layout is the OCI image layout directory holding the index (tagged
	// with the tag as org.opencontainers.image.ref.name).
	Layout string
	// Digest is the image index's digest.
	Digest v1.Hash
	// Platforms are the platforms built, in order.
	Platforms []v1.Platform
	// Manifests are the digests of the per-platform image manifests, in
	// Platforms order.
	Manifests []v1.Hash
	// SBOMs are the SPDX documents of each platform's binary, beside the
	// layout (<name>.<os>-<arch>.spdx.json), in Platforms order.
	SBOMs []string
}

// BuildIndex builds each image for every platform (the same static binary,
// cross-compiled) and writes it as an OCI image index in an OCI image
// layout dir/<name>.oci, with an SPDX SBOM of each binary's modules beside
// it. Same sources and toolchain give the same digests: files and config
// carry fixed times, and gzip and JSON are deterministic.
func BuildIndex(ctx context.Context, root, dir, tag, version string, platforms []v1.Platform, imgs ...Image) ([]Built, error) {
	var out []Built
	for _, img := range imgs {
		b := Built{Image: img, Layout: filepath.Join(dir, img.Name+".oci"), Platforms: platforms}
		var adds []mutate.IndexAddendum
		for _, p := range platforms {
			suffix := p.OS + "-" + p.Architecture
			bin := filepath.Join(dir, "bin", suffix, img.Binary)
			gb := img.GoBinary(root, bin, version)
			gb.Env = append(gb.Env, "GOOS="+p.OS, "GOARCH="+p.Architecture)
			if err := image.BuildGo(ctx, gb); err != nil {
				return nil, fmt.Errorf("failed to build %s for %s: %w", img.Name, suffix, err)
			}
			oci, err := ociImage(img.Spec(bin, tag, version), p)
			if err != nil {
				return nil, fmt.Errorf("failed to build image %s for %s: %w", img.Name, suffix, err)
			}
			d, err := oci.Digest()
			if err != nil {
				return nil, err
			}
			b.Manifests = append(b.Manifests, d)
			sbom, err := SPDX(bin, img, version, p)
			if err != nil {
				return nil, err
			}
			sbomPath := filepath.Join(dir, img.Name+"."+suffix+".spdx.json")
			if err := os.WriteFile(sbomPath, sbom, 0o644); err != nil { //nolint:gosec // an SBOM is published with the image
				return nil, fmt.Errorf("failed to write %s: %w", sbomPath, err)
			}
			b.SBOMs = append(b.SBOMs, sbomPath)
			plat := p
			adds = append(adds, mutate.IndexAddendum{Add: oci, Descriptor: v1.Descriptor{Platform: &plat}})
		}
		idx := mutate.IndexMediaType(mutate.AppendManifests(empty.Index, adds...), types.OCIImageIndex)
		d, err := idx.Digest()
		if err != nil {
			return nil, err
		}
		b.Digest = d
		if err := os.RemoveAll(b.Layout); err != nil {
			return nil, err
		}
		lp, err := layout.Write(b.Layout, empty.Index)
		if err != nil {
			return nil, fmt.Errorf("failed to create %s: %w", b.Layout, err)
		}
		if err := lp.AppendIndex(idx, layout.WithAnnotations(map[string]string{
			"org.opencontainers.image.ref.name": tag,
		})); err != nil {
			return nil, fmt.Errorf("failed to write %s: %w", b.Layout, err)
		}
		out = append(out, b)
	}
	return out, nil
}

// ociImage is the harness builder's image for spec with OCI media types and
// the platform's architecture in its config.
func ociImage(spec image.Spec, p v1.Platform) (v1.Image, error) {
	built, err := image.Build(spec)
	if err != nil {
		return nil, err
	}
	layers, err := built.Layers()
	if err != nil {
		return nil, err
	}
	base := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	for _, l := range layers {
		raw, err := readAll(l.Uncompressed)
		if err != nil {
			return nil, err
		}
		ol, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
			return io.NopCloser(bytes.NewReader(raw)), nil
		}, tarball.WithMediaType(types.OCILayer))
		if err != nil {
			return nil, err
		}
		if base, err = mutate.AppendLayers(base, ol); err != nil {
			return nil, err
		}
	}
	cf, err := built.ConfigFile()
	if err != nil {
		return nil, err
	}
	ncf, err := base.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Variant = p.OS, p.Architecture, p.Variant
	cf.RootFS = ncf.RootFS
	cf.History = nil
	return mutate.ConfigFile(base, cf)
}

func readAll(open func() (io.ReadCloser, error)) ([]byte, error) {
	rc, err := open()
	if err != nil {
		return nil, err
	}
	defer func() { _ = rc.Close() }()
	return io.ReadAll(rc)
}

// Summary is one line per image: reference, index digest, per-platform
// manifest digests and SBOMs.
func Summary(built []Built, tag string) string {
	var b strings.Builder
	for _, x := range built {
		fmt.Fprintf(&b, "%s@%s (OCI image index in %s)\n", x.Image.Ref(tag), x.Digest, x.Layout)
		for i, m := range x.Manifests {
			fmt.Fprintf(&b, "  %s/%s %s sbom %s\n", x.Platforms[i].OS, x.Platforms[i].Architecture, m, filepath.Base(x.SBOMs[i]))
		}
	}
	return b.String()
}
