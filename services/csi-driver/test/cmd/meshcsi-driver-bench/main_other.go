//go:build !linux

package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "meshcsi-driver-bench: the driver mounts with Linux system calls; run the benchmark on Linux")
	os.Exit(1)
}
