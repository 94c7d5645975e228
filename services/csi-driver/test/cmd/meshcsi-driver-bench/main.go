//go:build linux

// Command meshcsi-driver-bench benchmarks the meshcsi-driver binary over its
// Unix socket as the kubelet drives it, against the floor measured in the
// same run, and prints a table and one JSON line. It needs root.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/meshcsi/meshcsi/libs/signals"
	"github.com/meshcsi/meshcsi/services/csi-driver/test/bench"
)

func main() {
	ctx, stop := signals.Context(context.Background())
	defer stop()
	var o bench.Options
	bare := flag.String("serve-bare", "", "internal: serve the no-op floor server on this socket")
	flag.StringVar(&o.Driver, "driver", "_output/bin/meshcsi-driver", "meshcsi-driver binary")
	flag.IntVar(&o.Pairs, "pairs", 2000, "publish+unpublish pairs per scenario")
	flag.IntVar(&o.Workers, "workers", 8, "concurrency of the concurrent scenarios")
	flag.IntVar(&o.ExtraMounts, "extra-mounts", 1000, "unrelated bind mounts for the second round")
	flag.IntVar(&o.RSSPairs, "rss-pairs", 10000, "pairs served before resident memory is read")
	flag.IntVar(&o.ProbeRuns, "probe-runs", 20, "exec-to-Probe measurements")
	flag.Parse()
	if *bare != "" {
		if err := bench.ServeBare(ctx, *bare); err != nil {
			fmt.Fprintln(os.Stderr, "bare server:", err)
			os.Exit(1)
		}
		return
	}
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	o.Self, o.Out = self, os.Stdout
	if _, err := bench.Run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "meshcsi-driver-bench:", err)
		os.Exit(1)
	}
}
