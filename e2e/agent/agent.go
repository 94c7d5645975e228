// Package agent is a stand-in node agent for the e2e suite and the demo: a
// server on a Unix socket that answers one line with one line, and the client
// a workload pod runs through the CSI volume. Each ping names the pod and says
// whether the pod could write into the mounted directory, so a test learns
// what happened inside the pod from the server side alone.
package agent

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Ping is one request the server received.
type Ping struct {
	// Name is the client's name (the pod name).
	Name string
	// Write is what the client saw when it tried to write next to the
	// socket: "denied: <errno>" or "allowed".
	Write string
	// Seq counts the client's pings from 1.
	Seq int
	// At is when the server received it.
	At time.Time
}

// Server answers pings on a Unix socket and remembers them.
type Server struct {
	l     net.Listener
	log   io.Writer
	mu    sync.Mutex
	pings []Ping
	wake  chan struct{}
}

// Listen creates the socket at path (mode 0666, so pods running as any user
// can connect) and returns a Server; call Serve.
func Listen(path string, log io.Writer) (*Server, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil { //nolint:gosec // pods of any UID traverse it, as with a real agent
		return nil, fmt.Errorf("failed to create %s: %w", filepath.Dir(path), err)
	}
	_ = os.Remove(path)
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("failed to listen on %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o666); err != nil { //nolint:gosec // a socket pods of any UID connect to
		_ = l.Close()
		return nil, fmt.Errorf("failed to chmod %s: %w", path, err)
	}
	if log == nil {
		log = io.Discard
	}
	return &Server{l: l, log: log, wake: make(chan struct{})}, nil
}

// Serve answers until ctx is done, then closes the listener.
func (s *Server) Serve(ctx context.Context) error {
	go func() {
		<-ctx.Done()
		_ = s.l.Close()
	}()
	for {
		c, err := s.l.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("failed to accept: %w", err)
		}
		go s.handle(c)
	}
}

func (s *Server) handle(c net.Conn) {
	defer func() { _ = c.Close() }()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return
	}
	p := parse(strings.TrimSpace(line))
	p.At = time.Now()
	s.mu.Lock()
	s.pings = append(s.pings, p)
	close(s.wake)
	s.wake = make(chan struct{})
	s.mu.Unlock()
	host, _ := os.Hostname()
	_, _ = fmt.Fprintf(s.log, "%s agent: ping %d from %s (write into the volume: %s)\n", p.At.Format("15:04:05"), p.Seq, p.Name, p.Write)
	_, _ = fmt.Fprintf(c, "pong from the agent on %s to %s #%d\n", host, p.Name, p.Seq)
}

// parse reads "ping name=X;write=Y;seq=N" (write may hold spaces).
func parse(line string) Ping {
	var p Ping
	for _, f := range strings.Split(strings.TrimPrefix(line, "ping "), ";") {
		k, v, _ := strings.Cut(strings.TrimSpace(f), "=")
		switch k {
		case "name":
			p.Name = v
		case "write":
			p.Write = v
		case "seq":
			_, _ = fmt.Sscanf(v, "%d", &p.Seq)
		}
	}
	return p
}

// WaitFor blocks until a ping matching ok arrives (or has arrived) and
// returns it.
func (s *Server) WaitFor(ctx context.Context, ok func(Ping) bool) (Ping, error) {
	for {
		s.mu.Lock()
		for _, p := range s.pings {
			if ok(p) {
				s.mu.Unlock()
				return p, nil
			}
		}
		wake := s.wake
		s.mu.Unlock()
		select {
		case <-ctx.Done():
			return Ping{}, fmt.Errorf("no matching ping: %w", ctx.Err())
		case <-wake:
		}
	}
}

// CheckWrite tries to create a file in dir and reports "allowed" or
// "denied: <reason>".
func CheckWrite(dir string) string {
	p := filepath.Join(dir, ".meshcsi-write-test")
	f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o600)
	if err != nil {
		var errno syscall.Errno
		if errors.As(err, &errno) {
			return "denied: " + errno.Error()
		}
		return "denied: " + err.Error()
	}
	_ = f.Close()
	_ = os.Remove(p)
	return "allowed"
}

// SendPing sends one ping over the socket and returns the reply.
func SendPing(ctx context.Context, socket, name, write string, seq int) (string, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", socket)
	if err != nil {
		return "", fmt.Errorf("failed to connect to %s: %w", socket, err)
	}
	defer func() { _ = c.Close() }()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := fmt.Fprintf(c, "ping name=%s;write=%s;seq=%d\n", name, write, seq); err != nil {
		return "", fmt.Errorf("failed to send: %w", err)
	}
	reply, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("failed to read the reply: %w", err)
	}
	return strings.TrimSpace(reply), nil
}
