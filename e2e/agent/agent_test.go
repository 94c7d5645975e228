package agent

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestPingRoundTrip(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sock := filepath.Join(t.TempDir(), "agent", "agent.sock")
	s, err := Listen(sock, nil)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	w := CheckWrite(filepath.Dir(sock))
	if w != "allowed" {
		t.Fatalf("CheckWrite on a writable dir = %q", w)
	}
	reply, err := SendPing(ctx, sock, "pod-a", "denied: read-only file system", 3)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(reply, "pod-a #3") {
		t.Errorf("reply %q", reply)
	}
	p, err := s.WaitFor(ctx, func(p Ping) bool { return p.Name == "pod-a" })
	if err != nil {
		t.Fatal(err)
	}
	if p.Seq != 3 || p.Write != "denied: read-only file system" {
		t.Errorf("ping %+v", p)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestCheckWriteDenied(t *testing.T) {
	if got := CheckWrite(filepath.Join(t.TempDir(), "missing")); !strings.HasPrefix(got, "denied: ") {
		t.Errorf("CheckWrite on a missing dir = %q", got)
	}
}
