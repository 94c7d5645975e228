package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"time"

	"go.uber.org/zap"

	"github.com/meshcsi/meshcsi/libs/kubeharness"
)

const usage = `usage: kubeharness <command> [flags]

commands:
  up      start a cluster and print the admin kubeconfig path
  down    stop the cluster in --dir and remove everything it left on the host
          (--node-slot: stop whichever node-mode cluster runs on this machine)
  status  show the cluster in --dir (exit 1 if a component is not running)

run "kubeharness <command> -h" for the flags of a command.`

// errUsage marks a command-line mistake.
var errUsage = errors.New("usage error")

func run(ctx context.Context, args []string, stdout io.Writer, log *zap.SugaredLogger) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: no command\n%s", errUsage, usage)
	}
	switch args[0] {
	case "up":
		return up(ctx, args[1:], stdout, log)
	case "down":
		return down(ctx, args[1:], log)
	case "status":
		return status(args[1:], stdout)
	case "-h", "--help", "help":
		_, err := fmt.Fprintln(stdout, usage)
		return err
	default:
		return fmt.Errorf("%w: unknown command %q\n%s", errUsage, args[0], usage)
	}
}

// upConfig is what `up` parses from its flags.
type upConfig struct {
	opts kubeharness.Options
}

func parseUp(args []string) (upConfig, error) {
	fs := flag.NewFlagSet("up", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	mode := fs.String("mode", "node", "control-plane or node")
	dir := fs.String("dir", "_output/cluster", "state directory (certificates, data, logs)")
	kcm := fs.Bool("controller-manager", false, "also run kube-controller-manager in control-plane mode")
	binDir := fs.String("bin-dir", "", "Kubernetes binaries (default $"+kubeharness.BinDirEnv+" or the make cache)")
	kubeletDir := fs.String("kubelet-dir", "", "kubelet root directory in node mode (default <dir>/kubelet)")
	timeout := fs.Duration("timeout", 90*time.Second, "how long to wait for each component")
	if err := fs.Parse(args); err != nil {
		return upConfig{}, fmt.Errorf("%w: %w", errUsage, err)
	}
	if fs.NArg() > 0 {
		return upConfig{}, fmt.Errorf("%w: unexpected arguments %v", errUsage, fs.Args())
	}
	m, err := kubeharness.ParseMode(*mode)
	if err != nil {
		return upConfig{}, fmt.Errorf("%w: --mode: %w", errUsage, err)
	}
	if *dir == "" {
		return upConfig{}, fmt.Errorf("%w: --dir must not be empty", errUsage)
	}
	abs, err := filepath.Abs(*dir)
	if err != nil {
		return upConfig{}, fmt.Errorf("failed to resolve --dir: %w", err)
	}
	return upConfig{opts: kubeharness.Options{
		Mode:              m,
		Dir:               abs,
		ControllerManager: *kcm,
		BinDir:            *binDir,
		KubeletDir:        *kubeletDir,
		StartTimeout:      *timeout,
		Detached:          true,
	}}, nil
}

func up(ctx context.Context, args []string, stdout io.Writer, log *zap.SugaredLogger) error {
	cfg, err := parseUp(args)
	if err != nil {
		return err
	}
	cfg.opts.Logf = log.Infof
	c, err := kubeharness.Start(ctx, cfg.opts)
	if err != nil {
		return err
	}
	log.Infof("cluster up; stop it with: kubeharness down --dir %s", c.Dir())
	_, err = fmt.Fprintln(stdout, c.Kubeconfig())
	return err
}

func parseDir(name string, args []string) (string, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	dir := fs.String("dir", "_output/cluster", "state directory of the cluster")
	if err := fs.Parse(args); err != nil {
		return "", fmt.Errorf("%w: %w", errUsage, err)
	}
	if fs.NArg() > 0 {
		return "", fmt.Errorf("%w: unexpected arguments %v", errUsage, fs.Args())
	}
	return filepath.Abs(*dir)
}

func down(ctx context.Context, args []string, log *zap.SugaredLogger) error {
	if len(args) == 1 && args[0] == "--node-slot" {
		return kubeharness.StopNodeSlotHolder(ctx, log.Infof)
	}
	dir, err := parseDir("down", args)
	if err != nil {
		return err
	}
	c, err := kubeharness.Attach(dir)
	if errors.Is(err, os.ErrNotExist) {
		log.Infof("no cluster in %s", dir)
		return nil
	}
	if err != nil {
		return err
	}
	c.SetLogf(log.Infof)
	if err := c.Stop(ctx); err != nil {
		return err
	}
	log.Infof("cluster in %s stopped", dir)
	return nil
}

func status(args []string, stdout io.Writer) error {
	dir, err := parseDir("status", args)
	if err != nil {
		return err
	}
	c, err := kubeharness.Attach(dir)
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("no cluster in %s", dir)
	}
	if err != nil {
		return err
	}
	running := c.Running()
	names := make([]string, 0, len(running))
	for n := range running {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Fprintf(stdout, "mode: %s\nkubeconfig: %s\n", c.Mode(), c.Kubeconfig())
	down := 0
	for _, n := range names {
		state := "running"
		if !running[n] {
			state, down = "NOT RUNNING", down+1
		}
		fmt.Fprintf(stdout, "%-24s %s\n", n, state)
	}
	if down > 0 {
		return fmt.Errorf("%d component(s) not running; logs in %s", down, filepath.Join(dir, "logs"))
	}
	return nil
}
