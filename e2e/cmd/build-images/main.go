// Command build-images builds meshcsi's images (driver, sentinel, demo-agent)
// with the harness's Go image builder, the same way the e2e suite does, for
// `make images`:
//
//	build-images --out _output/images --tag dev --version v0.1.0
//
// It writes, for each image, an OCI image layout <name>.oci holding a
// multi-platform OCI image index (linux/amd64 and linux/arm64, tagged
// --tag), an SPDX SBOM of each platform's binary beside it
// (<name>.linux-<arch>.spdx.json), and a docker-archive <name>.tar of the
// host's platform. Push a layout with e.g.
// `skopeo copy --all oci:_output/images/driver.oci:dev docker://<registry>/meshcsi/driver:dev`;
// load an archive with `ctr -n k8s.io images import` or `docker load`.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/meshcsi/meshcsi/e2e/env"
	"github.com/meshcsi/meshcsi/e2e/images"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	out := flag.String("out", "_output/images", "output directory")
	tag := flag.String("tag", "dev", "image tag")
	version := flag.String("version", "dev", "version stamped into the binaries")
	archives := flag.Bool("archives", true, "also write docker-archives of the host's platform")
	flag.Parse()
	if err := run(ctx, *out, *tag, *version, *archives); err != nil {
		fmt.Fprintln(os.Stderr, "build-images:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, out, tag, version string, archives bool) error {
	if tag == "" {
		return errors.New("--tag must not be empty")
	}
	all := []images.Image{images.Driver, images.Sentinel, images.DemoAgent}
	built, err := images.BuildIndex(ctx, env.RepoRoot(), out, tag, version, images.Platforms, all...)
	if err != nil {
		return err
	}
	fmt.Print(images.Summary(built, tag))
	if !archives {
		return nil
	}
	paths, err := images.Build(ctx, env.RepoRoot(), out, tag, version, all...)
	if err != nil {
		return err
	}
	for i, a := range paths {
		fmt.Printf("%s -> %s (docker-archive, host platform)\n", all[i].Ref(tag), a)
	}
	return nil
}
