package app

import (
	"runtime/debug"
	"sync"
)

// memoryLimit is the Go runtime's soft limit for `run` unless GOMEMLIMIT is
// set: the garbage collector works harder near it instead of letting the
// heap double after the initial pod list.
const memoryLimit = 28 << 20

var tuneOnce sync.Once

// tuneForRun applies the memory setting once per process.
func tuneForRun(getenv func(string) string) {
	tuneOnce.Do(func() {
		if getenv("GOMEMLIMIT") == "" {
			debug.SetMemoryLimit(memoryLimit)
		}
	})
}
