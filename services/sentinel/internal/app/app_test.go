package app

import (
	"bytes"
	"context"
	"strings"
	"syscall"
	"testing"

	"github.com/meshcsi/meshcsi/libs/signals"
)

func TestExitCodes(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		code int
		text string
	}{
		{"help", []string{"--help"}, nil, ExitOK, "usage"},
		{"bad flag", []string{"run", "--timeout", "x"}, map[string]string{"POD_NAMESPACE": "ns", "MESHCSI_RELEASE": "r"}, ExitError, "--timeout"},
		{"no cluster", []string{"plan"}, map[string]string{"POD_NAMESPACE": "ns", "MESHCSI_RELEASE": "r"}, ExitError, "no kubernetes configuration"},
		{"prepare-upgrade, no cluster", []string{"prepare-upgrade"}, map[string]string{"POD_NAMESPACE": "ns", "MESHCSI_RELEASE": "r"}, ExitError, "no kubernetes configuration"},
	}
	// "no cluster" must not depend on where the test runs: client-go reads
	// the in-cluster settings from the process environment.
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	t.Setenv("KUBERNETES_SERVICE_PORT", "")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr bytes.Buffer
			code := Main(context.Background(), Env{Args: tt.args, Getenv: func(k string) string { return tt.env[k] }, Stdout: &bytes.Buffer{}, Stderr: &stderr})
			if code != tt.code || !strings.Contains(stderr.String(), tt.text) {
				t.Fatalf("Main() = %d, stderr %q; want %d and %q", code, stderr.String(), tt.code, tt.text)
			}
		})
	}
}

func TestInterruptedBySignal(t *testing.T) {
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(&signals.Error{Signal: syscall.SIGTERM})
	if !interrupted(ctx) {
		t.Fatal("a signal cancellation is not seen as an interruption")
	}
	plain, stop := context.WithCancel(context.Background())
	stop()
	if interrupted(plain) {
		t.Fatal("a plain cancellation is seen as a signal")
	}
}
