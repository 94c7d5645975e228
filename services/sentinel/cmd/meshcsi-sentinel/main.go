// Command meshcsi-sentinel removes a meshcsi release safely: `handoff` (the
// pre-delete hook) records what to remove and starts the sentinel Job, `run`
// (the Job) waits until no pod uses the CSI driver and then removes the
// release, itself last, `plan` shows what run would do, and
// `prepare-upgrade` (the pre-upgrade and pre-rollback hook) deletes the
// suspended, never-started Job so Helm creates it anew from the new chart.
package main

import (
	"context"
	"os"

	"github.com/meshcsi/meshcsi/libs/signals"
	"github.com/meshcsi/meshcsi/services/sentinel/internal/app"
)

// version is stamped by the linker (-X main.version=...).
var version = "dev"

func main() {
	ctx, stop := signals.Context(context.Background())
	code := app.Main(ctx, app.Env{
		Args: os.Args[1:], Getenv: os.Getenv, Stdout: os.Stdout, Stderr: os.Stderr, Version: version,
	})
	stop()
	os.Exit(code)
}
