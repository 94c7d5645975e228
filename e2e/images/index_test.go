//go:build images

package images

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// TestIndexReproducible (build tag images, `make test-images`) builds the driver and sentinel images for both
// platforms twice, into different directories, and expects the same index
// and manifest digests and byte-identical SBOMs; it then reads the layout
// back and checks the index, the platforms and the SBOMs' contents.
func TestIndexReproducible(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 35*time.Minute)
	defer cancel()
	const tag, version = "repro", "v0.0.0-repro"
	imgs := []Image{Driver, Sentinel}
	var runs [2][]Built
	for i := range runs {
		b, err := BuildIndex(ctx, repoRoot(t), t.TempDir(), tag, version, Platforms, imgs...)
		if err != nil {
			t.Fatal(err)
		}
		runs[i] = b
	}
	t.Logf("index digests:\n%s", Summary(runs[0], tag))
	for i, a := range runs[0] {
		b := runs[1][i]
		if a.Digest != b.Digest || !slices.Equal(a.Manifests, b.Manifests) {
			t.Errorf("%s: digests differ between two builds:\n %s %v\n %s %v", a.Image.Name, a.Digest, a.Manifests, b.Digest, b.Manifests)
		}
		for j := range a.SBOMs {
			x, _ := os.ReadFile(a.SBOMs[j])
			y, _ := os.ReadFile(b.SBOMs[j])
			if string(x) != string(y) || len(x) == 0 {
				t.Errorf("%s: SBOM %s differs between two builds", a.Image.Name, filepath.Base(a.SBOMs[j]))
			}
		}
	}

	wantModule := map[string]string{"driver": "google.golang.org/grpc", "sentinel": "k8s.io/client-go"}
	for _, b := range runs[0] {
		t.Run(b.Image.Name, func(t *testing.T) {
			lp, err := layout.FromPath(b.Layout)
			if err != nil {
				t.Fatal(err)
			}
			top, err := lp.ImageIndex()
			if err != nil {
				t.Fatal(err)
			}
			tm, err := top.IndexManifest()
			if err != nil {
				t.Fatal(err)
			}
			if len(tm.Manifests) != 1 || tm.Manifests[0].Digest != b.Digest || tm.Manifests[0].Annotations["org.opencontainers.image.ref.name"] != tag {
				t.Fatalf("layout index.json %+v, want the index %s tagged %s", tm.Manifests, b.Digest, tag)
			}
			idx, err := lp.ImageIndex()
			if err != nil {
				t.Fatal(err)
			}
			idx, err = idx.ImageIndex(b.Digest)
			if err != nil {
				t.Fatal(err)
			}
			if mt, _ := idx.MediaType(); mt != types.OCIImageIndex {
				t.Errorf("index media type %s", mt)
			}
			im, err := idx.IndexManifest()
			if err != nil {
				t.Fatal(err)
			}
			var plats []string
			for _, d := range im.Manifests {
				plats = append(plats, d.Platform.OS+"/"+d.Platform.Architecture)
				img, err := idx.Image(d.Digest)
				if err != nil {
					t.Fatal(err)
				}
				cf, err := img.ConfigFile()
				if err != nil {
					t.Fatal(err)
				}
				if cf.Architecture != d.Platform.Architecture || cf.OS != "linux" {
					t.Errorf("%s: config says %s/%s", d.Digest, cf.OS, cf.Architecture)
				}
				if mt, _ := img.MediaType(); mt != types.OCIManifestSchema1 {
					t.Errorf("%s: manifest media type %s", d.Digest, mt)
				}
			}
			if !slices.Equal(plats, []string{"linux/amd64", "linux/arm64"}) {
				t.Errorf("platforms %v", plats)
			}
			for i, p := range b.SBOMs {
				raw, err := os.ReadFile(p)
				if err != nil {
					t.Fatal(err)
				}
				var doc spdxDoc
				if err := json.Unmarshal(raw, &doc); err != nil {
					t.Fatalf("%s: %v", p, err)
				}
				if doc.SPDXVersion != "SPDX-2.3" || len(doc.Packages) < 3 {
					t.Errorf("%s: %s with %d packages", p, doc.SPDXVersion, len(doc.Packages))
				}
				if !strings.Contains(doc.Packages[0].Comment, "GOARCH="+b.Platforms[i].Architecture) {
					t.Errorf("%s: binary built for another platform: %s", p, doc.Packages[0].Comment)
				}
				if !slices.ContainsFunc(doc.Packages, func(p spdxPackage) bool { return p.Name == wantModule[b.Image.Name] }) {
					t.Errorf("%s lacks module %s", p, wantModule[b.Image.Name])
				}
			}
		})
	}
}
