// Package images describes meshcsi's images the way Dockerfile.driver and
// Dockerfile.sentinel build them, and builds them without a Docker engine
// with the harness's Go image builder: the same static binary (CGO_ENABLED=0,
// -trimpath, the Makefile's -ldflags), the same path, entrypoint, user and
// OCI labels. dockerfile_test.go keeps the two paths in step.
package images

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/meshcsi/meshcsi/libs/kubeharness/image"
)

// Image is one image of the project.
type Image struct {
	// Name is the short name: the image is meshcsi/<Name>:<tag>.
	Name string
	// Dockerfile is its Dockerfile at the repository root ("" for test-only
	// images).
	Dockerfile string
	// Module is the Go module directory, relative to the repository root.
	Module string
	// Package is the main package inside Module.
	Package string
	// Binary is the binary's file name.
	Binary string
	// User is the image's USER.
	User string
	// Title and Description go into the OCI labels.
	Title, Description string
}

// The project's images.
var (
	Driver = Image{
		Name: "driver", Dockerfile: "Dockerfile.driver",
		Module: "services/csi-driver", Package: "./cmd/meshcsi-driver", Binary: "meshcsi-driver",
		User:        "0:0",
		Title:       "meshcsi-driver",
		Description: "CSI node driver that hands a node agent's Unix socket to pods through ephemeral inline volumes",
	}
	Sentinel = Image{
		Name: "sentinel", Dockerfile: "Dockerfile.sentinel",
		Module: "services/sentinel", Package: "./cmd/meshcsi-sentinel", Binary: "meshcsi-sentinel",
		User:        "65532:65532",
		Title:       "meshcsi-sentinel",
		Description: "Removes a meshcsi release once no pod uses its CSI driver any more",
	}
	// DemoAgent is the e2e and demo workload/agent image (no Dockerfile).
	DemoAgent = Image{
		Name: "demo-agent", Module: "e2e", Package: "./cmd/demo-agent", Binary: "demo-agent",
		User:        "65532:65532",
		Title:       "meshcsi-demo-agent",
		Description: "Stand-in node agent and workload client for the meshcsi demo and e2e suite",
	}
)

// Ref is the image reference for tag.
func (i Image) Ref(tag string) string { return "meshcsi/" + i.Name + ":" + tag }

// Path is where the binary lives in the image.
func (i Image) Path() string { return "/usr/local/bin/" + i.Binary }

// LDFlags are the Makefile's LDFLAGS for version.
func LDFlags(version string) string { return "-s -w -X main.version=" + version }

// GoBinary is the build of the image's binary into out.
func (i Image) GoBinary(root, out, version string) image.GoBinary {
	return image.GoBinary{
		Dir:     filepath.Join(root, i.Module),
		Package: i.Package,
		Output:  out,
		LDFlags: LDFlags(version),
		Env:     []string{"GOWORK=off"},
	}
}

// Spec is the image built around the binary at bin.
func (i Image) Spec(bin, tag, version string) image.Spec {
	return image.Spec{
		Ref:        i.Ref(tag),
		Files:      []image.File{{Path: i.Path(), Source: bin, Mode: 0o755}},
		Entrypoint: []string{i.Path()},
		User:       i.User,
		Labels:     i.Labels(version),
	}
}

// Labels are the image's OCI labels.
func (i Image) Labels(version string) map[string]string {
	return map[string]string{
		"org.opencontainers.image.title":       i.Title,
		"org.opencontainers.image.description": i.Description,
		"org.opencontainers.image.version":     version,
		"org.opencontainers.image.vendor":      "meshcsi",
	}
}

// Build compiles each image's binary under dir and writes its
// docker-archive there; it returns the archives in order.
func Build(ctx context.Context, root, dir, tag, version string, imgs ...Image) ([]string, error) {
	archives := make([]string, 0, len(imgs))
	for _, img := range imgs {
		bin := filepath.Join(dir, "bin", img.Binary)
		if err := image.BuildGo(ctx, img.GoBinary(root, bin, version)); err != nil {
			return nil, fmt.Errorf("failed to build %s: %w", img.Name, err)
		}
		archive := filepath.Join(dir, img.Name+".tar")
		if err := image.BuildArchive(img.Spec(bin, tag, version), archive); err != nil {
			return nil, fmt.Errorf("failed to build image %s: %w", img.Ref(tag), err)
		}
		archives = append(archives, archive)
	}
	return archives, nil
}
