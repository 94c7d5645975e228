// Package signals turns SIGINT and SIGTERM into context cancellation: the
// first signal asks the program to shut down gracefully, a second one exits
// at once, so an operator is never stuck behind a slow drain.
package signals

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

// exit is replaced in tests.
var exit = os.Exit

// Context returns a context cancelled by the first SIGINT or SIGTERM; a second
// signal terminates the process with status 1. The stop function releases the
// signal handler.
func Context(parent context.Context) (context.Context, context.CancelFunc) {
	return notifyContext(parent, make(chan os.Signal, 2), syscall.SIGINT, syscall.SIGTERM)
}

func notifyContext(parent context.Context, ch chan os.Signal, sigs ...os.Signal) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(parent)
	signal.Notify(ch, sigs...)
	done := make(chan struct{})
	go func() {
		select {
		case s := <-ch:
			cancel(&Error{Signal: s})
		case <-done:
			return
		}
		select {
		case <-ch:
			exit(1)
		case <-done:
		}
	}()
	return ctx, func() {
		signal.Stop(ch)
		close(done)
		cancel(context.Canceled)
	}
}

// Error is the cancellation cause recorded when a signal arrives.
type Error struct {
	// Signal is the signal that was received.
	Signal os.Signal
}

func (e *Error) Error() string { return "received signal " + e.Signal.String() }
