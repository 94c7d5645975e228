// Package image builds container images from locally built static binaries,
// without a Docker engine, and imports them into a containerd node.
//
// The images are single-layer: the files given (usually one Go binary built
// with CGO_ENABLED=0) on an empty base, with the entrypoint, user, labels and
// environment set in the image config, so they can mirror the project's
// Dockerfiles. They are written as docker-archive tarballs, which
// `ctr images import` (and `docker load`) accept.
package image

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// File is one file of an image.
type File struct {
	// Path is the absolute path inside the image, e.g. /meshcsi-driver.
	Path string
	// Source is a file on disk to copy; ignored when Data is set.
	Source string
	// Data is the file's content.
	Data []byte
	// Mode is the permission bits; default 0755.
	Mode int64
}

// Spec describes an image.
type Spec struct {
	// Ref is the image reference the archive is tagged with, e.g.
	// meshcsi/driver:dev. Pods name it with imagePullPolicy: Never.
	Ref string
	// Files are the image's files; parent directories are added.
	Files []File
	// Entrypoint and Cmd as in a Dockerfile's ENTRYPOINT and CMD.
	Entrypoint []string
	Cmd        []string
	// User as in USER, e.g. "65532:65532".
	User string
	// WorkingDir as in WORKDIR.
	WorkingDir string
	// Env as in ENV, "KEY=value" items.
	Env []string
	// Labels as in LABEL.
	Labels map[string]string
}

// epoch is the timestamp of every file and of the image, so that the same
// inputs give the same image digest.
var epoch = time.Unix(0, 0).UTC()

// Build assembles the image described by spec.
func Build(spec Spec) (v1.Image, error) {
	if len(spec.Files) == 0 {
		return nil, errors.New("image spec has no files")
	}
	layerTar, err := layerTarball(spec.Files)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	})
	if err != nil {
		return nil, fmt.Errorf("failed to create layer: %w", err)
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return nil, fmt.Errorf("failed to append layer: %w", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("failed to read image config: %w", err)
	}
	cf = cf.DeepCopy()
	cf.OS = "linux"
	cf.Architecture = runtime.GOARCH
	cf.Created = v1.Time{Time: epoch}
	cf.Config.Entrypoint = spec.Entrypoint
	cf.Config.Cmd = spec.Cmd
	cf.Config.User = spec.User
	cf.Config.WorkingDir = spec.WorkingDir
	cf.Config.Env = spec.Env
	cf.Config.Labels = spec.Labels
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, fmt.Errorf("failed to set image config: %w", err)
	}
	return img, nil
}

// layerTarball writes the files, and their parent directories, as a tar.
func layerTarball(files []File) ([]byte, error) {
	dirs := map[string]bool{}
	for _, f := range files {
		if !path.IsAbs(f.Path) || path.Clean(f.Path) != f.Path || f.Path == "/" {
			return nil, fmt.Errorf("invalid image file path %q: need a clean absolute path", f.Path)
		}
		for d := path.Dir(f.Path); d != "/"; d = path.Dir(d) {
			dirs[d] = true
		}
	}
	sortedDirs := make([]string, 0, len(dirs))
	for d := range dirs {
		sortedDirs = append(sortedDirs, d)
	}
	sort.Strings(sortedDirs)

	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, d := range sortedDirs {
		hdr := &tar.Header{Typeflag: tar.TypeDir, Name: strings.TrimPrefix(d, "/") + "/", Mode: 0o755, ModTime: epoch}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, fmt.Errorf("failed to write %s: %w", d, err)
		}
	}
	for _, f := range files {
		data := f.Data
		if data == nil {
			var err error
			if data, err = os.ReadFile(f.Source); err != nil {
				return nil, fmt.Errorf("failed to read %s: %w", f.Source, err)
			}
		}
		mode := f.Mode
		if mode == 0 {
			mode = 0o755
		}
		hdr := &tar.Header{Typeflag: tar.TypeReg, Name: strings.TrimPrefix(f.Path, "/"), Mode: mode, Size: int64(len(data)), ModTime: epoch}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, fmt.Errorf("failed to write %s: %w", f.Path, err)
		}
		if _, err := tw.Write(data); err != nil {
			return nil, fmt.Errorf("failed to write %s: %w", f.Path, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("failed to finish layer: %w", err)
	}
	return buf.Bytes(), nil
}

// WriteArchive writes img as a docker-archive tarball tagged ref.
func WriteArchive(img v1.Image, ref, archive string) error {
	tag, err := name.NewTag(ref)
	if err != nil {
		return fmt.Errorf("invalid image reference %q: %w", ref, err)
	}
	if err := os.MkdirAll(filepath.Dir(archive), 0o750); err != nil {
		return fmt.Errorf("failed to create %s: %w", filepath.Dir(archive), err)
	}
	if err := tarball.WriteToFile(archive, tag, img); err != nil {
		return fmt.Errorf("failed to write %s: %w", archive, err)
	}
	return nil
}

// BuildArchive builds spec and writes it to archive.
func BuildArchive(spec Spec, archive string) error {
	img, err := Build(spec)
	if err != nil {
		return err
	}
	return WriteArchive(img, spec.Ref, archive)
}

// GoBinary describes a static Go build.
type GoBinary struct {
	// Dir is the directory go build runs in (a module or workspace).
	Dir string
	// Package is the main package, e.g. ./cmd/meshcsi-driver.
	Package string
	// Output is the binary to write.
	Output string
	// LDFlags are passed as -ldflags, e.g. "-s -w -X main.version=dev".
	LDFlags string
	// Tags are build tags.
	Tags []string
	// Env is added to the build's environment (e.g. GOWORK=off).
	Env []string
}

// BuildGo compiles a static binary (CGO_ENABLED=0, -trimpath) for linux on
// this machine's architecture.
func BuildGo(ctx context.Context, b GoBinary) error {
	if b.Package == "" || b.Output == "" {
		return errors.New("go build needs a package and an output path")
	}
	args := []string{"build", "-trimpath", "-o", b.Output}
	if b.LDFlags != "" {
		args = append(args, "-ldflags", b.LDFlags)
	}
	if len(b.Tags) > 0 {
		args = append(args, "-tags", strings.Join(b.Tags, ","))
	}
	args = append(args, b.Package)
	cmd := exec.CommandContext(ctx, goTool(), args...) //nolint:gosec // building the caller's package is the point
	cmd.Dir = b.Dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH)
	cmd.Env = append(cmd.Env, b.Env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("failed to build %s: %w\n%s", b.Package, err, out)
	}
	return nil
}

// goTool is the go command on $PATH: the toolchain that runs the caller.
func goTool() string { return "go" }

// Import loads a docker-archive or OCI archive into the containerd listening
// on socket, in the k8s.io namespace where the kubelet looks for images.
func Import(ctx context.Context, socket, archive string) error {
	//nolint:gosec // the socket and archive are the caller's own files
	cmd := exec.CommandContext(ctx, "ctr", "--address", socket, "--namespace", "k8s.io", "images", "import", archive)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("failed to import %s into containerd: %w: %s", archive, err, strings.TrimSpace(string(out)))
	}
	return nil
}
