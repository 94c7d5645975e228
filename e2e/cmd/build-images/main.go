// Command build-images builds meshcsi's images (driver, sentinel, demo-agent)
// as docker-archive tarballs with the harness's Go image builder, the same
// way the e2e suite does, for `make images`:
//
//	build-images --out _output/images --tag dev --version v0.1.0
//
// Load them with `ctr -n k8s.io images import` or `docker load`.
package main

import (
	"context"
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
	out := flag.String("out", "_output/images", "directory for the archives")
	tag := flag.String("tag", "dev", "image tag")
	version := flag.String("version", "dev", "version stamped into the binaries")
	flag.Parse()
	archives, err := images.Build(ctx, env.RepoRoot(), *out, *tag, *version, images.Driver, images.Sentinel, images.DemoAgent)
	if err != nil {
		fmt.Fprintln(os.Stderr, "build-images:", err)
		os.Exit(1)
	}
	for i, a := range archives {
		img := []images.Image{images.Driver, images.Sentinel, images.DemoAgent}[i]
		fmt.Printf("%s -> %s\n", img.Ref(*tag), a)
	}
}
