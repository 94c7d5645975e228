// Package bench measures the real driver binary the way the kubelet uses it:
// a new gRPC connection over the Unix socket for every call,
// NodePublishVolume + NodeUnpublishVolume pairs, sequential and 8-way
// concurrent, with and without 1,000 unrelated bind mounts on the machine.
// In the same run it measures the floor (a no-op gRPC server in its own
// process, reached the same way, plus the bare mount syscalls), pair by pair
// alternately with the driver's sequential pairs (with a new connection per
// call, and on one connection each), so that load from other processes
// weighs on both alike; the cost of the readiness check (--source-socket)
// with the socket there, alternating with a source without it; the resident
// memory of the driver and of that bare server after the same calls, and the
// time from exec to the first successful Probe. It needs root.
package bench
