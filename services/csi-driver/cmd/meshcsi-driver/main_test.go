package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"syscall"
	"testing"

	tc "github.com/meshcsi/meshcsi/services/csi-driver/internal/drivertest"
)

// The tests re-execute the test binary as the driver: with
// MESHCSI_DRIVER_MAIN=1 it runs main() with the given arguments.
func TestMain(m *testing.M) {
	if os.Getenv("MESHCSI_DRIVER_MAIN") == "1" {
		os.Args = append([]string{"meshcsi-driver"}, strings.Fields(os.Getenv("MESHCSI_DRIVER_ARGS"))...)
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func driver(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "MESHCSI_DRIVER_MAIN=1", "MESHCSI_DRIVER_ARGS="+strings.Join(args, " "))
	return cmd
}

func TestBadConfigExitsNamingTheFlag(t *testing.T) {
	tests := []struct {
		args []string
		flag string
	}{
		{[]string{"--source=a=/run/a"}, "--node-id"},
		{[]string{"--node-id=n", "--source=../x=/run/a"}, "--source"},
		{[]string{"--node-id=n", "--source=a=/run/a", "--log-format=xml"}, "--log-format"},
	}
	for _, tt := range tests {
		var stderr bytes.Buffer
		cmd := driver(t, tt.args...)
		cmd.Stderr = &stderr
		err := cmd.Run()
		var exitErr *exec.ExitError
		if !errors.As(err, &exitErr) || exitErr.ExitCode() == 0 {
			t.Fatalf("%v: err = %v, want a non-zero exit", tt.args, err)
		}
		if !strings.Contains(stderr.String(), tt.flag) {
			t.Fatalf("%v: stderr %q does not name %s", tt.args, stderr.String(), tt.flag)
		}
	}
}

func TestHelpExitsZero(t *testing.T) {
	var stderr bytes.Buffer
	cmd := driver(t, "--help")
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("--help: %v", err)
	}
	if !strings.Contains(stderr.String(), "-source") {
		t.Fatalf("usage lacks --source: %s", stderr.String())
	}
}

func TestSIGTERMExitsZeroAndRemovesSockets(t *testing.T) {
	dir, err := os.MkdirTemp("", "meshcsi-main-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	kd := filepath.Join(dir, "kubelet")
	src := filepath.Join(dir, "src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "csi.sock")
	reg := filepath.Join(kd, "plugins_registry", "csi.meshcsi.io-reg.sock")
	cmd := driver(t, "--endpoint=unix://"+sock, "--node-id=n", "--source=agent="+src, "--kubelet-dir="+kd, "--http-address=127.0.0.1:0")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	// The driver answers Probe once it serves both sockets.
	tc.WaitServing(t, sock)
	if _, err := os.Stat(reg); err != nil {
		t.Fatalf("registration socket missing while serving: %v", err)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit after SIGTERM = %v; stderr %s", err, stderr.String())
	}
	for _, p := range []string{sock, reg} {
		if _, err := os.Lstat(p); !os.IsNotExist(err) {
			t.Fatalf("%s left after exit: %v", p, err)
		}
	}
	if !strings.Contains(stderr.String(), "shutting down") {
		t.Fatalf("no shutdown log: %s", stderr.String())
	}
}

func TestTuneRuntime(t *testing.T) {
	procs, gc := runtime.GOMAXPROCS(0), debug.SetGCPercent(100)
	t.Cleanup(func() { runtime.GOMAXPROCS(procs); debug.SetGCPercent(gc) })

	runtime.GOMAXPROCS(2)
	tuneRuntime(func(string) string { return "" })
	if got := runtime.GOMAXPROCS(0); got != maxProcs {
		t.Errorf("GOMAXPROCS = %d, want the driver's %d", got, maxProcs)
	}
	if got := debug.SetGCPercent(100); got != gcPercent {
		t.Errorf("GC percent = %d, want the driver's %d", got, gcPercent)
	}

	// Set in the environment: the runtime already applied them; the driver
	// leaves them.
	runtime.GOMAXPROCS(2)
	env := map[string]string{"GOGC": "100", "GOMAXPROCS": "2"}
	tuneRuntime(func(k string) string { return env[k] })
	if got := runtime.GOMAXPROCS(0); got != 2 {
		t.Errorf("GOMAXPROCS = %d with GOMAXPROCS=2 set, want 2", got)
	}
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("GC percent = %d with GOGC=100 set, want 100", got)
	}
}
