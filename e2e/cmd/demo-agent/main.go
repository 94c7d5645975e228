// Command demo-agent stands in for a node agent in the demo and the e2e suite.
//
//	demo-agent serve  --socket /run/meshcsi-demo/agent/agent.sock
//	demo-agent client --socket /run/agent/agent.sock --name $(POD_NAME) [--once] [--interval 2s]
//
// serve answers pings on a Unix socket on the node; client runs in a workload
// pod that mounts the socket directory through the meshcsi CSI volume, first
// tries to write into that directory (it must be read-only), then pings.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/meshcsi/meshcsi/e2e/agent"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "demo-agent:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return errors.New("usage: demo-agent serve|client [flags]")
	}
	fs := flag.NewFlagSet("demo-agent "+args[0], flag.ContinueOnError)
	socket := fs.String("socket", "/run/agent/agent.sock", "the agent's Unix socket")
	name := fs.String("name", os.Getenv("POD_NAME"), "client: the name sent with each ping")
	once := fs.Bool("once", false, "client: ping once and exit")
	interval := fs.Duration("interval", 2*time.Second, "client: time between pings")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	switch args[0] {
	case "serve":
		s, err := agent.Listen(*socket, os.Stdout)
		if err != nil {
			return err
		}
		fmt.Printf("demo-agent: serving on %s\n", *socket)
		return s.Serve(ctx)
	case "client":
		write := agent.CheckWrite(filepath.Dir(*socket))
		fmt.Printf("demo-agent: writing into %s: %s\n", filepath.Dir(*socket), write)
		for seq := 1; ; seq++ {
			reply, err := agent.SendPing(ctx, *socket, *name, write, seq)
			if err != nil {
				fmt.Printf("demo-agent: ping %d failed: %v\n", seq, err)
			} else {
				fmt.Printf("demo-agent: %s\n", reply)
			}
			if *once {
				return err
			}
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(*interval):
			}
		}
	default:
		return fmt.Errorf("unknown mode %q (want serve or client)", args[0])
	}
}
