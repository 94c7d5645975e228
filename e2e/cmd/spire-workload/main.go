// Command spire-workload is the workload of the SPIRE e2e case and demo: it
// fetches its X509-SVID from the SPIRE agent's Workload API through the socket
// directory meshcsi mounts into its pod, again and again, and prints one JSON
// line per attempt (package e2e/spire/fetch), so the suite (and a user reading the pod's log) sees which
// identity it got and that it keeps getting it across an agent restart.
//
//	spire-workload --socket /run/spire/sockets/agent.sock --interval 2s
//
// Every attempt opens a new connection: a fetch after the agent was replaced
// proves the new agent's socket is reachable through the same mount.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spiffe/go-spiffe/v2/workloadapi"

	"github.com/meshcsi/meshcsi/e2e/spire/fetch"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "spire-workload:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("spire-workload", flag.ContinueOnError)
	socket := fs.String("socket", "/run/spire/sockets/agent.sock", "the SPIRE agent's Workload API socket")
	interval := fs.Duration("interval", 2*time.Second, "time between fetches")
	timeout := fs.Duration("timeout", 5*time.Second, "deadline of one fetch")
	if err := fs.Parse(args); err != nil {
		return err
	}
	enc := json.NewEncoder(os.Stdout)
	for seq := 1; ; seq++ {
		a := fetchOnce(ctx, "unix://"+*socket, *timeout)
		a.Seq = seq
		if err := enc.Encode(a); err != nil {
			return fmt.Errorf("failed to write to stdout: %w", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(*interval):
		}
	}
}

// fetchOnce asks the Workload API once, on a new connection. The agent answers
// "no identity issued" until it has synced its entries, so errors are
// printed and the next attempt retries.
func fetchOnce(ctx context.Context, addr string, timeout time.Duration) fetch.Attempt {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	l := fetch.Attempt{Time: time.Now().UTC()}
	svid, err := workloadapi.FetchX509SVID(ctx, workloadapi.WithAddr(addr))
	if err != nil {
		l.Error = err.Error()
		return l
	}
	l.SPIFFEID = svid.ID.String()
	if len(svid.Certificates) > 0 {
		l.Serial = svid.Certificates[0].SerialNumber.String()
		l.Expires = svid.Certificates[0].NotAfter.UTC()
	}
	return l
}
