package app

import (
	"io/fs"
	"math"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"

	"go.uber.org/zap"
)

// memoryShare is the part of the container's memory limit given to the Go
// heap as its soft limit (GOMEMLIMIT); the rest covers what the runtime does
// not count (binary text, stacks, GC metadata), so the garbage collector
// works harder near the limit instead of the kernel killing the sentinel
// (each kill counts against the Job's backoffLimit).
const memoryShare = 0.75

var tuneOnce sync.Once

// tuneForRun sets the Go memory limit once per process from the container's
// cgroup memory limit, unless GOMEMLIMIT is set. Without a cgroup limit the
// Go default (no soft limit) stays.
func tuneForRun(getenv func(string) string, log *zap.Logger) {
	tuneOnce.Do(func() {
		if getenv("GOMEMLIMIT") != "" {
			return
		}
		limit, ok := cgroupMemoryLimit()
		if !ok {
			log.Debug("no container memory limit; leaving the Go memory limit unset")
			return
		}
		soft := int64(float64(limit) * memoryShare)
		debug.SetMemoryLimit(soft)
		log.Info("Go memory limit set from the container's", zap.Int64("container_limit_bytes", limit), zap.Int64("gomemlimit_bytes", soft))
	})
}

// memoryLimit reads the memory limit of the cgroup this process is in, from
// /proc/self/cgroup (selfCgroup) and the cgroup file system (root, i.e.
// /sys/fs/cgroup): v2's memory.max, or v1's memory.limit_in_bytes. It
// reports false when there is no limit or it cannot be read.
func memoryLimit(root fs.FS, selfCgroup string) (int64, bool) {
	var candidates []string
	for _, line := range strings.Split(strings.TrimSpace(selfCgroup), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		dir := strings.Trim(parts[2], "/")
		switch {
		case parts[0] == "0" && parts[1] == "":
			candidates = append(candidates, join(dir, "memory.max"), "memory.max")
		case hasController(parts[1], "memory"):
			candidates = append(candidates, join("memory/"+dir, "memory.limit_in_bytes"), "memory/memory.limit_in_bytes")
		}
	}
	for _, c := range candidates {
		raw, err := fs.ReadFile(root, c)
		if err != nil {
			continue
		}
		v := strings.TrimSpace(string(raw))
		if v == "max" {
			return 0, false
		}
		n, err := strconv.ParseInt(v, 10, 64)
		// cgroup v1 writes "unlimited" as a huge page-aligned number.
		if err != nil || n <= 0 || n >= math.MaxInt64/2 {
			return 0, false
		}
		return n, true
	}
	return 0, false
}

func join(dir, file string) string {
	dir = strings.Trim(dir, "/")
	if dir == "" {
		return file
	}
	return dir + "/" + file
}

func hasController(list, name string) bool {
	for _, c := range strings.Split(list, ",") {
		if c == name {
			return true
		}
	}
	return false
}
