package image

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
)

// PauseRef is the sandbox ("pause") image the harness's containerd uses.
const PauseRef = "meshcsi/pause:kubeharness"

// pauseSource is the pause program: PID 1 of every pod sandbox. It reaps
// orphaned children and exits on SIGTERM or SIGINT.
const pauseSource = `package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGCHLD)
	for s := range sigs {
		if s != syscall.SIGCHLD {
			return
		}
		for {
			pid, err := syscall.Wait4(-1, nil, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
}
`

// BuildPause compiles the pause program and writes its image, tagged
// PauseRef, to archive.
func BuildPause(ctx context.Context, archive string) error {
	dir, err := os.MkdirTemp("", "kubeharness-pause-")
	if err != nil {
		return fmt.Errorf("failed to create build dir: %w", err)
	}
	defer os.RemoveAll(dir)
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(pauseSource), 0o600); err != nil {
		return fmt.Errorf("failed to write pause source: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module pause\n\ngo 1.22\n"), 0o600); err != nil {
		return fmt.Errorf("failed to write pause go.mod: %w", err)
	}
	bin := filepath.Join(dir, "pause")
	if err := BuildGo(ctx, GoBinary{Dir: dir, Package: ".", Output: bin, LDFlags: "-s -w", Env: []string{"GOWORK=off", "GOFLAGS=-mod=mod"}}); err != nil {
		return err
	}
	return BuildArchive(Spec{
		Ref:        PauseRef,
		Files:      []File{{Path: "/pause", Source: bin}},
		Entrypoint: []string{"/pause"},
		User:       "65535:65535",
		Labels:     map[string]string{"org.opencontainers.image.title": "kubeharness pause"},
	}, archive)
}
