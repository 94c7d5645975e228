package spire

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/meshcsi/meshcsi/e2e/images"
	"github.com/meshcsi/meshcsi/libs/kubeharness/image"
)

// Version is the SPIRE release the images hold: the only one the module
// proxy serves (../shared/THIRD-PARTY.md). mk/60-proof.mk builds it.
const Version = "v1.13.3"

// BinDirEnv names the directory holding spire-server and spire-agent
// (exported by the Makefile).
const BinDirEnv = "MESHCSI_SPIRE_BIN_DIR"

// BinDir is where `make spire` puts the binaries: $MESHCSI_SPIRE_BIN_DIR, or
// the default cache directory.
func BinDir() string {
	if d := os.Getenv(BinDirEnv); d != "" {
		return d
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".cache", "meshcsi", "spire", Version, "bin")
}

// Binary is a SPIRE image: one prebuilt static binary on an empty base.
type Binary struct {
	// Name is the image's short name: meshcsi/<Name>:<tag>.
	Name string
	// File is the binary's file name in BinDir.
	File string
	// User is the image's USER.
	User string
	// Description goes into the OCI labels.
	Description string
}

// The SPIRE images. Both run as root: the server writes its datastore to an
// emptyDir, the agent reads other processes' cgroups through the host's /proc.
var (
	Server = Binary{Name: "spire-server", File: "spire-server", User: "0:0",
		Description: "SPIRE server " + Version + " (cgo, static), built from the Go module proxy"}
	Agent = Binary{Name: "spire-agent", File: "spire-agent", User: "0:0",
		Description: "SPIRE agent " + Version + ", built from the Go module proxy"}
	// Workload fetches its X509-SVID through the meshcsi volume
	// (e2e/cmd/spire-workload).
	Workload = images.Image{
		Name: "spire-workload", Module: "e2e", Package: "./cmd/spire-workload", Binary: "spire-workload",
		User:        "65532:65532",
		Title:       "meshcsi-spire-workload",
		Description: "Fetches its X509-SVID from the SPIRE agent through the meshcsi CSI volume",
	}
)

// Ref is the image reference for tag.
func (b Binary) Ref(tag string) string { return "meshcsi/" + b.Name + ":" + tag }

// Path is where the binary lives in the image.
func (b Binary) Path() string { return "/usr/local/bin/" + b.File }

// Spec is the image around the binary in binDir.
func (b Binary) Spec(binDir, tag string) image.Spec {
	return image.Spec{
		Ref:        b.Ref(tag),
		Files:      []image.File{{Path: b.Path(), Source: filepath.Join(binDir, b.File), Mode: 0o755}},
		Entrypoint: []string{b.Path()},
		User:       b.User,
		Labels: map[string]string{
			"org.opencontainers.image.title":       b.Name,
			"org.opencontainers.image.description": b.Description,
			"org.opencontainers.image.version":     Version,
		},
	}
}

// ErrNoBinaries is returned when `make spire` has not been run.
var ErrNoBinaries = errors.New("SPIRE binaries missing (run `make spire`)")

// BuildImages writes the server, agent and workload images as archives under
// dir and returns them. root is the repository root.
func BuildImages(ctx context.Context, root, dir, binDir, tag, version string) ([]string, error) {
	var archives []string
	for _, b := range []Binary{Server, Agent} {
		if _, err := os.Stat(filepath.Join(binDir, b.File)); errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w: no %s in %s", ErrNoBinaries, b.File, binDir)
		}
		archive := filepath.Join(dir, b.Name+".tar")
		if err := image.BuildArchive(b.Spec(binDir, tag), archive); err != nil {
			return nil, fmt.Errorf("failed to build image %s: %w", b.Ref(tag), err)
		}
		archives = append(archives, archive)
	}
	w, err := images.Build(ctx, root, dir, tag, version, Workload)
	if err != nil {
		return nil, err
	}
	return append(archives, w...), nil
}
