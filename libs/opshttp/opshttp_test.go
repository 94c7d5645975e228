package opshttp

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"
)

func TestEndpoints(t *testing.T) {
	reg := NewRegistry("meshcsi", "test", "v0.0.1")
	ready := errors.New("source spire missing")
	srv, err := New(Config{
		Gatherer: reg,
		Logger:   zap.NewNop(),
		Ready:    func(context.Context) error { return ready },
	})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, l) }()
	base := "http://" + l.Addr().String()

	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := get("/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz = %d", code)
	}
	if code, body := get("/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "source spire missing") {
		t.Fatalf("/readyz = %d %q, want 503 naming the cause", code, body)
	}
	ready = nil
	if code, _ := get("/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz after recovery = %d", code)
	}
	code, body := get("/metrics")
	if code != http.StatusOK || !strings.Contains(body, `meshcsi_build_info{component="test"`) || !strings.Contains(body, "go_goroutines") {
		t.Fatalf("/metrics = %d, body lacks build info or Go collector:\n%s", code, body)
	}
	if n := testutil.CollectAndCount(reg, "meshcsi_build_info"); n != 1 {
		t.Fatalf("build_info series = %d", n)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve() = %v, want nil after cancel", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after cancel")
	}
}

func TestNewValidates(t *testing.T) {
	if _, err := New(Config{Logger: zap.NewNop()}); err == nil {
		t.Fatal("accepted a config without a gatherer")
	}
	if _, err := New(Config{Gatherer: NewRegistry("x", "y", "z")}); err == nil {
		t.Fatal("accepted a config without a logger")
	}
}
