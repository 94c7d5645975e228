package kubeharness

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestTailFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	if err := os.WriteFile(path, []byte("1\n2\n3\n4\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		n    int
		want string
	}{
		{2, "3\n4"},
		{10, "1\n2\n3\n4"},
	}
	for _, tt := range tests {
		if got := tailFile(path, tt.n); got != tt.want {
			t.Errorf("tailFile(%d) = %q, want %q", tt.n, got, tt.want)
		}
	}
	if got := tailFile(filepath.Join(t.TempDir(), "missing"), 3); !strings.Contains(got, "no log") {
		t.Errorf("tailFile(missing) = %q", got)
	}
}

func TestWaitReadyFailsFastWithLogTail(t *testing.T) {
	dir := t.TempDir()
	c := &component{
		Name:    "failing",
		Path:    "/bin/sh",
		Args:    []string{"-c", "echo first line; echo the reason it failed; exit 3"},
		Env:     []string{dirEnv + "=" + dir},
		LogPath: filepath.Join(dir, "failing.log"),
	}
	if err := c.start(); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	err := waitReady(context.Background(), c, time.Minute, func(context.Context) error { return os.ErrNotExist })
	if err == nil {
		t.Fatal("waitReady succeeded for a process that exited")
	}
	if time.Since(began) > 10*time.Second {
		t.Errorf("waitReady took %s: not failing fast", time.Since(began))
	}
	for _, want := range []string{"failing exited", "the reason it failed", "exit status 3"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

func TestWaitReadyTimeout(t *testing.T) {
	dir := t.TempDir()
	c := &component{Name: "sleeper", Path: "/bin/sleep", Args: []string{"30"}, Env: []string{dirEnv + "=" + dir},
		LogPath: filepath.Join(dir, "sleeper.log")}
	if err := c.start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.stop(context.Background(), time.Second, dir) })
	err := waitReady(context.Background(), c, 300*time.Millisecond, func(context.Context) error { return os.ErrNotExist })
	if err == nil || !strings.Contains(err.Error(), "not ready after") {
		t.Fatalf("err = %v, want a timeout", err)
	}
	if !ownedPID(c.PID, dir) {
		t.Fatal("ownedPID does not recognise the harness's own process")
	}
	if ownedPID(c.PID, dir+"-other") {
		t.Fatal("ownedPID matched another cluster's dir")
	}
	pid := c.PID
	if err := c.stop(context.Background(), time.Second, dir); err != nil {
		t.Fatal(err)
	}
	if pidAlive(pid) {
		t.Fatal("process alive after stop")
	}
}
