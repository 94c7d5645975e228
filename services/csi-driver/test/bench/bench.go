//go:build linux

package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"github.com/moby/sys/mountinfo"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// Options configures a run.
type Options struct {
	// Driver is the path of the meshcsi-driver binary. Required.
	Driver string
	// Self is the path of the bench binary, re-executed as the bare server.
	Self string
	// Pairs is the number of publish+unpublish pairs per scenario.
	Pairs int
	// Workers is the concurrency of the concurrent scenarios.
	Workers int
	// ExtraMounts is the number of unrelated bind mounts added for the
	// second round.
	ExtraMounts int
	// RSSPairs is the number of pairs both servers have served when their
	// resident memory is read.
	RSSPairs int
	// ProbeRuns is how many times exec-to-Probe is measured.
	ProbeRuns int
	// Out receives the table and the JSON line.
	Out io.Writer
}

// Scenario is the outcome of one workload.
type Scenario struct {
	Name         string  `json:"name"`
	Pairs        int     `json:"pairs"`
	Workers      int     `json:"workers"`
	PublishP50   float64 `json:"publish_p50_us"`
	PublishP99   float64 `json:"publish_p99_us"`
	UnpublishP50 float64 `json:"unpublish_p50_us"`
	UnpublishP99 float64 `json:"unpublish_p99_us"`
	PairsPerSec  float64 `json:"pairs_per_sec"`
}

// Result is the whole run, printed as one JSON line.
type Result struct {
	Scenarios         []Scenario `json:"scenarios"`
	FloorRPCP50       float64    `json:"floor_rpc_p50_us"`
	FloorBindP50      float64    `json:"floor_bind_p50_us"`
	FloorUmountP50    float64    `json:"floor_umount_p50_us"`
	FloorPublishP50   float64    `json:"floor_publish_p50_us"`
	FloorUnpublishP50 float64    `json:"floor_unpublish_p50_us"`
	FloorPairsPerSec  float64    `json:"floor_pairs_per_sec"`
	// The floor on one connection: no-op round trips on one long-lived
	// connection plus the same syscalls.
	FloorOneConnRPCP50       float64 `json:"floor_one_conn_rpc_p50_us"`
	FloorOneConnPublishP50   float64 `json:"floor_one_conn_publish_p50_us"`
	FloorOneConnUnpublishP50 float64 `json:"floor_one_conn_unpublish_p50_us"`
	FloorOneConnPairsPerSec  float64 `json:"floor_one_conn_pairs_per_sec"`
	OneConnPublishVsFloor    float64 `json:"one_conn_publish_p50_vs_floor"`
	OneConnUnpublishVsFloor  float64 `json:"one_conn_unpublish_p50_vs_floor"`
	UnpublishVsFloor         float64 `json:"unpublish_p50_vs_floor"`
	// PairsPerSecVsFloor is sequential pairs/s with a new connection per
	// call, driver over floor.
	PairsPerSecVsFloor float64 `json:"pairs_per_sec_vs_floor"`
	// The readiness wait (--source-socket) when the agent's socket is
	// there: the driver's own mean wait (its histogram) and the difference
	// of one-connection publish p50 with and without the option.
	SocketWaitMeanUs     float64 `json:"socket_wait_mean_us"`
	SocketWaitPublishP50 float64 `json:"socket_wait_publish_p50_us"`
	// SocketWaitPlainPublishP50 is the publish p50 of the source without
	// --source-socket, alternating with it on the same driver.
	SocketWaitPlainPublishP50 float64 `json:"socket_wait_plain_publish_p50_us"`
	SocketWaitOverheadP50     float64 `json:"socket_wait_overhead_p50_us"`
	PublishVsFloor            float64 `json:"publish_p50_vs_floor"`
	ExtraMountsRatio          float64 `json:"extra_mounts_seq_ratio"`
	DriverRSSMiB              float64 `json:"driver_rss_mib"`
	DriverAnonMiB             float64 `json:"driver_rss_anon_mib"`
	BareAnonMiB               float64 `json:"bare_rss_anon_mib"`
	BareRSSMiB                float64 `json:"bare_rss_mib"`
	RSSRatio                  float64 `json:"rss_ratio"`
	ExecToProbeP50Ms          float64 `json:"exec_to_probe_p50_ms"`
	// ServerPublishMeanUs is the driver's own mean handling time of a
	// publish (from its histogram), without connection set-up.
	ServerPublishMeanUs   float64 `json:"server_publish_mean_us"`
	ServerUnpublishMeanUs float64 `json:"server_unpublish_mean_us"`
	ExecToProbeMinMs      float64 `json:"exec_to_probe_min_ms"`
	// DriverCPUPerPairUs is the driver process's user+system CPU time per
	// pair in the sequential new-connection scenario (all its threads:
	// gRPC, its own work, the mount system calls, the runtime's spinning);
	// BareCPUPerPairUs is the bare server's over the same scenario (its
	// no-op calls only: the floor's mount calls are made by the bench).
	DriverCPUPerPairUs float64 `json:"driver_cpu_per_pair_us"`
	BareCPUPerPairUs   float64 `json:"bare_cpu_per_pair_us"`
	// BareExecToProbeP50Ms is the bare server\'s exec to first Probe.
	BareExecToProbeP50Ms float64 `json:"bare_exec_to_probe_p50_ms"`
	RSSPairs             int     `json:"rss_pairs"`
	ExtraMounts          int     `json:"extra_mounts"`
	ConnectionsPerCall   string  `json:"connections_per_call"`
}

// env is the scratch area of a run.
type env struct {
	root, kd, src, sock, bareSock string
	httpAddr                      string
	vols                          []string
}

const volsPerWorker = 16

// Run performs the whole benchmark.
func Run(ctx context.Context, o Options) (*Result, error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("the benchmark mounts and needs root")
	}
	root, err := os.MkdirTemp("", "meshcsi-bench-")
	if err != nil {
		return nil, err
	}
	defer cleanupRoot(root)
	e := &env{
		root: root, kd: filepath.Join(root, "kubelet"), src: filepath.Join(root, "agent"),
		sock: filepath.Join(root, "csi.sock"), bareSock: filepath.Join(root, "bare.sock"),
	}
	if err := os.MkdirAll(e.src, 0o750); err != nil {
		return nil, err
	}
	for i := 0; i < o.Workers*volsPerWorker; i++ {
		v := filepath.Join(e.kd, "pods", "bench-pod", "volumes", "kubernetes.io~csi", "vol"+strconv.Itoa(i))
		if err := os.MkdirAll(v, 0o750); err != nil {
			return nil, err
		}
		e.vols = append(e.vols, filepath.Join(v, "mount"))
	}
	if e.httpAddr, err = freeAddr(); err != nil {
		return nil, err
	}
	res := &Result{RSSPairs: o.RSSPairs, ExtraMounts: o.ExtraMounts,
		ConnectionsPerCall: "new gRPC connection per call (as the kubelet does)"}

	// Exec to first successful Probe, on a fresh driver each time.
	// The bare server is timed the same way, for reference.
	var probes, bareProbes []time.Duration
	for i := 0; i < o.ProbeRuns; i++ {
		d, err := execToProbe(ctx, o.Driver, e.driverArgs(), e.sock)
		if err != nil {
			return nil, fmt.Errorf("exec to probe: %w", err)
		}
		probes = append(probes, d)
		if d, err = execToProbe(ctx, o.Self, []string{"--serve-bare", e.bareSock}, e.bareSock); err != nil {
			return nil, fmt.Errorf("exec to probe (bare): %w", err)
		}
		bareProbes = append(bareProbes, d)
	}
	sort.Slice(probes, func(i, j int) bool { return probes[i] < probes[j] })
	sort.Slice(bareProbes, func(i, j int) bool { return bareProbes[i] < bareProbes[j] })
	res.ExecToProbeP50Ms = ms(pct(probes, 50))
	res.ExecToProbeMinMs = ms(probes[0])
	res.BareExecToProbeP50Ms = ms(pct(bareProbes, 50))

	// The floor: a no-op server in its own process, and the bare syscalls.
	bare, err := startProcess(ctx, o.Self, []string{"--serve-bare", e.bareSock}, e.bareSock)
	if err != nil {
		return nil, fmt.Errorf("bare server: %w", err)
	}
	defer func() { _ = bare.stop() }()
	drv, err := startProcess(ctx, o.Driver, e.driverArgs(), e.sock)
	if err != nil {
		return nil, fmt.Errorf("driver: %w", err)
	}
	defer func() { _ = drv.stop() }()

	// The driver against its floor, pair by pair alternately, so that both
	// see the same machine (it is shared: load moves every figure by tens
	// of per cent between runs, but alike for both within one).
	drvCPU, bareCPU := cpuTime(drv.cmd.Process.Pid), cpuTime(bare.cmd.Process.Pid)
	seq, fl, err := e.compare(o.Pairs, false, "sequential")
	if err != nil {
		return nil, err
	}
	res.DriverCPUPerPairUs = us(cpuTime(drv.cmd.Process.Pid)-drvCPU) / float64(o.Pairs)
	res.BareCPUPerPairUs = us(cpuTime(bare.cmd.Process.Pid)-bareCPU) / float64(o.Pairs)
	res.Scenarios = append(res.Scenarios, seq)
	res.FloorRPCP50, res.FloorBindP50, res.FloorUmountP50 = us(fl.rpc), us(fl.bind), us(fl.umount)
	res.FloorPublishP50, res.FloorUnpublishP50 = us(fl.publish), us(fl.unpublish)
	res.FloorPairsPerSec = fl.pairsPerSec
	// The driver's own throughput, without the kubelet's per-call dial.
	one, fl1, err := e.compare(o.Pairs, true, "sequential, one connection")
	if err != nil {
		return nil, err
	}
	res.Scenarios = append(res.Scenarios, one)
	res.FloorOneConnRPCP50, res.FloorOneConnPublishP50, res.FloorOneConnUnpublishP50 = us(fl1.rpc), us(fl1.publish), us(fl1.unpublish)
	res.FloorOneConnPairsPerSec = fl1.pairsPerSec
	served := 2 * o.Pairs
	s, err := e.pairs(e.sock, o.Pairs, o.Workers, "concurrent", false)
	if err != nil {
		return nil, err
	}
	served += o.Pairs
	res.Scenarios = append(res.Scenarios, s)
	undo, err := extraMounts(e.root, o.ExtraMounts)
	if err != nil {
		undo()
		return nil, err
	}
	for _, sc := range []struct {
		name    string
		workers int
	}{{"sequential+1000 mounts", 1}, {"concurrent+1000 mounts", o.Workers}} {
		s, err := e.pairs(e.sock, o.Pairs, sc.workers, strings.Replace(sc.name, "1000", strconv.Itoa(o.ExtraMounts), 1), false)
		if err != nil {
			undo()
			return nil, err
		}
		served += o.Pairs
		res.Scenarios = append(res.Scenarios, s)
	}
	undo()
	res.ServerPublishMeanUs, res.ServerUnpublishMeanUs = serverMeans(e.httpAddr)

	// Resident memory after the same number of pairs on both servers.
	if rest := o.RSSPairs - served; rest > 0 {
		if _, err := e.pairs(e.sock, rest, 1, "rss", false); err != nil {
			return nil, err
		}
	}
	if rest := o.RSSPairs - 2*o.Pairs; rest > 0 { // the floors served 2*o.Pairs
		if _, err := e.pairs(e.bareSock, rest, 1, "rss", false); err != nil {
			return nil, err
		}
	}
	if res.DriverRSSMiB, err = rssMiB(drv.cmd.Process.Pid, "VmRSS:"); err != nil {
		return nil, err
	}
	if res.BareRSSMiB, err = rssMiB(bare.cmd.Process.Pid, "VmRSS:"); err != nil {
		return nil, err
	}
	res.DriverAnonMiB, _ = rssMiB(drv.cmd.Process.Pid, "RssAnon:")
	res.BareAnonMiB, _ = rssMiB(bare.cmd.Process.Pid, "RssAnon:")
	res.RSSRatio = res.DriverRSSMiB / res.BareRSSMiB
	res.PublishVsFloor = seq.PublishP50 / res.FloorPublishP50
	res.UnpublishVsFloor = seq.UnpublishP50 / res.FloorUnpublishP50
	res.PairsPerSecVsFloor = seq.PairsPerSec / res.FloorPairsPerSec
	res.OneConnPublishVsFloor = one.PublishP50 / res.FloorOneConnPublishP50
	res.OneConnUnpublishVsFloor = one.UnpublishP50 / res.FloorOneConnUnpublishP50
	res.ExtraMountsRatio = res.Scenarios[3].PairsPerSec / seq.PairsPerSec
	if err := drv.stop(); err != nil {
		return nil, fmt.Errorf("driver did not exit cleanly on SIGTERM: %w", err)
	}
	if err := e.socketWait(ctx, o, res); err != nil {
		return nil, fmt.Errorf("socket wait: %w", err)
	}
	print(o.Out, res)
	return res, nil
}

// socketWait runs the driver again with two sources, one with
// --source-socket and an agent listening in its directory, one without, and
// alternates publish+unpublish pairs of the two on one connection: the
// difference of their publish p50s is what the readiness check costs when
// the socket is there, measured on the same process at the same time.
func (e *env) socketWait(ctx context.Context, o Options, res *Result) error {
	agent, err := net.Listen("unix", filepath.Join(e.src, "agent.sock"))
	if err != nil {
		return err
	}
	defer agent.Close()
	go func() {
		for {
			c, err := agent.Accept()
			if err != nil {
				return
			}
			_ = c.Close()
		}
	}()
	plain := filepath.Join(e.root, "plain")
	if err := os.MkdirAll(plain, 0o750); err != nil {
		return err
	}
	if e.httpAddr, err = freeAddr(); err != nil {
		return err
	}
	args := append(e.driverArgs(), "--source", "plain="+plain, "--source-socket", "agent=agent.sock")
	drv, err := startProcess(ctx, o.Driver, args, e.sock)
	if err != nil {
		return err
	}
	defer func() { _ = drv.stop() }()
	conn, err := dial(e.sock)
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close() }()
	do := onConn(conn)
	var pub, unpub [2][]time.Duration // 0: agent (--source-socket), 1: plain
	start := time.Now()
	for i := 0; i < o.Pairs; i++ {
		for k, source := range []string{"agent", "plain"} {
			target := e.vols[k*volsPerWorker+i%volsPerWorker]
			req := publishReq(target)
			req.VolumeContext["source"] = source
			d, err := do(func(ctx context.Context, c csi.NodeClient) error {
				_, err := c.NodePublishVolume(ctx, req)
				return err
			})
			if err != nil {
				return fmt.Errorf("publish %s: %w", target, err)
			}
			pub[k] = append(pub[k], d)
			d, err = do(func(ctx context.Context, c csi.NodeClient) error {
				_, err := c.NodeUnpublishVolume(ctx, &csi.NodeUnpublishVolumeRequest{VolumeId: req.VolumeId, TargetPath: target})
				return err
			})
			if err != nil {
				return fmt.Errorf("unpublish %s: %w", target, err)
			}
			unpub[k] = append(unpub[k], d)
		}
	}
	elapsed := time.Since(start)
	for k := range pub {
		sort.Slice(pub[k], func(i, j int) bool { return pub[k][i] < pub[k][j] })
		sort.Slice(unpub[k], func(i, j int) bool { return unpub[k][i] < unpub[k][j] })
	}
	res.Scenarios = append(res.Scenarios, Scenario{
		Name: "one connection, --source-socket (alternating with a plain source)", Pairs: o.Pairs, Workers: 1,
		PublishP50: us(pct(pub[0], 50)), PublishP99: us(pct(pub[0], 99)),
		UnpublishP50: us(pct(unpub[0], 50)), UnpublishP99: us(pct(unpub[0], 99)),
		PairsPerSec: float64(2*o.Pairs) / elapsed.Seconds(),
	})
	res.SocketWaitPublishP50 = us(pct(pub[0], 50))
	res.SocketWaitPlainPublishP50 = us(pct(pub[1], 50))
	res.SocketWaitOverheadP50 = res.SocketWaitPublishP50 - res.SocketWaitPlainPublishP50
	res.SocketWaitMeanUs = histogramMean(e.httpAddr, "meshcsi_socket_wait_seconds")
	return drv.stop()
}

func (e *env) driverArgs() []string {
	return []string{
		"--endpoint", e.sock, "--node-id", "bench", "--kubelet-dir", e.kd,
		"--source", "agent=" + e.src, "--http-address", e.httpAddr, "--log-level", "info",
	}
}

// execToProbe starts a server and polls Probe (new connection each try)
// until it answers ready.
func execToProbe(ctx context.Context, bin string, args []string, sock string) (time.Duration, error) {
	_ = os.Remove(sock)
	cmd := exec.CommandContext(ctx, bin, args...) //nolint:gosec // runs the binaries it was given
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	p := &process{cmd: cmd}
	defer func() { _ = p.stop() }()
	for time.Since(start) < 5*time.Second {
		if _, err := os.Stat(sock); err == nil {
			if ok, _ := probe(sock); ok {
				return time.Since(start), nil
			}
		}
		time.Sleep(50 * time.Microsecond)
	}
	return 0, errors.New("no successful Probe within 5s")
}

func dial(sock string) (*grpc.ClientConn, error) {
	return grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
}

func probe(sock string) (bool, error) {
	conn, err := dial(sock)
	if err != nil {
		return false, err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	r, err := csi.NewIdentityClient(conn).Probe(ctx, &csi.ProbeRequest{})
	if err != nil {
		return false, err
	}
	return r.GetReady().GetValue(), nil
}

// call makes one CSI call on a new connection and returns its latency.
func call(sock string, f func(context.Context, csi.NodeClient) error) (time.Duration, error) {
	start := time.Now()
	conn, err := dial(sock)
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	err = f(ctx, csi.NewNodeClient(conn))
	cancel()
	_ = conn.Close()
	return time.Since(start), err
}

// caller makes one CSI call and returns its latency.
type caller func(f func(context.Context, csi.NodeClient) error) (time.Duration, error)

// onConn makes calls on one long-lived connection, as a client that keeps
// its connection would; the kubelet does not, so this shows the driver's own
// throughput without the connection set-up.
func onConn(conn *grpc.ClientConn) caller {
	client := csi.NewNodeClient(conn)
	return func(f func(context.Context, csi.NodeClient) error) (time.Duration, error) {
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := f(ctx, client)
		cancel()
		return time.Since(start), err
	}
}

func publishReq(target string) *csi.NodePublishVolumeRequest {
	return &csi.NodePublishVolumeRequest{
		VolumeId:   "csi-" + filepath.Base(filepath.Dir(target)),
		TargetPath: target,
		VolumeCapability: &csi.VolumeCapability{
			AccessType: &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{}},
			AccessMode: &csi.VolumeCapability_AccessMode{Mode: csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER},
		},
		Readonly: true,
		VolumeContext: map[string]string{
			"csi.storage.k8s.io/ephemeral":           "true",
			"csi.storage.k8s.io/pod.name":            "bench",
			"csi.storage.k8s.io/pod.namespace":       "default",
			"csi.storage.k8s.io/pod.uid":             "bench-pod",
			"csi.storage.k8s.io/serviceAccount.name": "default",
			"source":                                 "agent",
		},
	}
}

// pairs runs n publish+unpublish pairs over workers goroutines, each call on
// a new connection, or, with reuse, each worker on one connection of its own.
func (e *env) pairs(sock string, n, workers int, name string, reuse bool) (Scenario, error) {
	pub := make([][]time.Duration, workers)
	unpub := make([][]time.Duration, workers)
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			do := func(f func(context.Context, csi.NodeClient) error) (time.Duration, error) { return call(sock, f) }
			if reuse {
				conn, err := dial(sock)
				if err != nil {
					errs <- fmt.Errorf("%s: dial: %w", name, err)
					return
				}
				defer func() { _ = conn.Close() }()
				do = onConn(conn)
			}
			vols := e.vols[w*volsPerWorker : (w+1)*volsPerWorker]
			for i := w; i < n; i += workers {
				target := vols[(i/workers)%volsPerWorker]
				req := publishReq(target)
				d, err := do(func(ctx context.Context, c csi.NodeClient) error {
					_, err := c.NodePublishVolume(ctx, req)
					return err
				})
				if err != nil {
					errs <- fmt.Errorf("%s: publish %s: %w", name, target, err)
					return
				}
				pub[w] = append(pub[w], d)
				d, err = do(func(ctx context.Context, c csi.NodeClient) error {
					_, err := c.NodeUnpublishVolume(ctx, &csi.NodeUnpublishVolumeRequest{VolumeId: req.VolumeId, TargetPath: target})
					return err
				})
				if err != nil {
					errs <- fmt.Errorf("%s: unpublish %s: %w", name, target, err)
					return
				}
				unpub[w] = append(unpub[w], d)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(errs)
	if err := <-errs; err != nil {
		return Scenario{}, err
	}
	p, u := flatten(pub), flatten(unpub)
	if workers == 1 {
		// As compare counts them: over the time the calls took.
		elapsed = 0
		for _, d := range append(p, u...) {
			elapsed += d
		}
	}
	return Scenario{
		Name: name, Pairs: n, Workers: workers,
		PublishP50: us(pct(p, 50)), PublishP99: us(pct(p, 99)),
		UnpublishP50: us(pct(u, 50)), UnpublishP99: us(pct(u, 99)),
		PairsPerSec: float64(n) / elapsed.Seconds(),
	}, nil
}

// floorResult is the floor of a run: per pair, what no driver can avoid,
// in the order the driver does it: a no-op publish round trip to the bare
// server, then the bare mount syscalls (mkdir, open_tree, mount_setattr,
// move_mount), then a no-op unpublish round trip, then umount and rmdir. A
// floor publish is its round trip plus its syscalls.
type floorResult struct {
	rpc, bind, umount, publish, unpublish time.Duration
	pairsPerSec                           float64
}

// compare runs n publish+unpublish pairs on the driver and n floor pairs,
// alternating pair by pair, with a new connection per call or (reuse) one
// connection to each server. Pairs per second of each side are n over the
// time its own pairs took.
func (e *env) compare(n int, reuse bool, name string) (Scenario, floorResult, error) {
	var drv, bare caller = func(f func(context.Context, csi.NodeClient) error) (time.Duration, error) { return call(e.sock, f) },
		func(f func(context.Context, csi.NodeClient) error) (time.Duration, error) { return call(e.bareSock, f) }
	if reuse {
		for _, c := range []struct {
			sock string
			do   *caller
		}{{e.sock, &drv}, {e.bareSock, &bare}} {
			conn, err := dial(c.sock)
			if err != nil {
				return Scenario{}, floorResult{}, err
			}
			defer func() { _ = conn.Close() }()
			*c.do = onConn(conn)
		}
	}
	var targets []string
	for i := 0; i < volsPerWorker; i++ {
		v := filepath.Join(e.root, "floor", "pods", "bench-pod", "volumes", "kubernetes.io~csi", "vol"+strconv.Itoa(i))
		if err := os.MkdirAll(v, 0o750); err != nil {
			return Scenario{}, floorResult{}, err
		}
		targets = append(targets, filepath.Join(v, "mount"))
	}
	var rpc, b, u, fpub, funpub, pub, unpub []time.Duration
	var floorTime, drvTime time.Duration
	attr := &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV | unix.MOUNT_ATTR_NOEXEC}
	for i := 0; i < n; i++ {
		// The floor's pair.
		target := targets[i%volsPerWorker]
		req := publishReq(target)
		r1, err := bare(func(ctx context.Context, c csi.NodeClient) error {
			_, err := c.NodePublishVolume(ctx, req)
			return err
		})
		if err != nil {
			return Scenario{}, floorResult{}, err
		}
		start := time.Now()
		if err := os.Mkdir(target, 0o750); err != nil {
			return Scenario{}, floorResult{}, err
		}
		tree, err := unix.OpenTree(unix.AT_FDCWD, e.src, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
		if err != nil {
			return Scenario{}, floorResult{}, fmt.Errorf("open_tree: %w", err)
		}
		if err := unix.MountSetattr(tree, "", unix.AT_EMPTY_PATH, attr); err != nil {
			_ = unix.Close(tree)
			return Scenario{}, floorResult{}, fmt.Errorf("mount_setattr: %w", err)
		}
		err = unix.MoveMount(tree, "", unix.AT_FDCWD, target, unix.MOVE_MOUNT_F_EMPTY_PATH)
		_ = unix.Close(tree)
		if err != nil {
			return Scenario{}, floorResult{}, fmt.Errorf("move_mount: %w", err)
		}
		bind := time.Since(start)
		r2, err := bare(func(ctx context.Context, c csi.NodeClient) error {
			_, err := c.NodeUnpublishVolume(ctx, &csi.NodeUnpublishVolumeRequest{VolumeId: req.VolumeId, TargetPath: target})
			return err
		})
		if err != nil {
			return Scenario{}, floorResult{}, err
		}
		start = time.Now()
		if err := unix.Unmount(target, unix.UMOUNT_NOFOLLOW); err != nil {
			return Scenario{}, floorResult{}, err
		}
		if err := unix.Rmdir(target); err != nil {
			return Scenario{}, floorResult{}, err
		}
		umount := time.Since(start)
		rpc = append(rpc, r1, r2)
		b, u = append(b, bind), append(u, umount)
		fpub, funpub = append(fpub, r1+bind), append(funpub, r2+umount)
		floorTime += r1 + bind + r2 + umount

		// The driver's pair.
		target = e.vols[i%volsPerWorker]
		req = publishReq(target)
		d1, err := drv(func(ctx context.Context, c csi.NodeClient) error {
			_, err := c.NodePublishVolume(ctx, req)
			return err
		})
		if err != nil {
			return Scenario{}, floorResult{}, fmt.Errorf("%s: publish %s: %w", name, target, err)
		}
		d2, err := drv(func(ctx context.Context, c csi.NodeClient) error {
			_, err := c.NodeUnpublishVolume(ctx, &csi.NodeUnpublishVolumeRequest{VolumeId: req.VolumeId, TargetPath: target})
			return err
		})
		if err != nil {
			return Scenario{}, floorResult{}, fmt.Errorf("%s: unpublish %s: %w", name, target, err)
		}
		pub, unpub = append(pub, d1), append(unpub, d2)
		drvTime += d1 + d2
	}
	for _, d := range [][]time.Duration{rpc, b, u, fpub, funpub, pub, unpub} {
		sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	}
	return Scenario{
			Name: name, Pairs: n, Workers: 1,
			PublishP50: us(pct(pub, 50)), PublishP99: us(pct(pub, 99)),
			UnpublishP50: us(pct(unpub, 50)), UnpublishP99: us(pct(unpub, 99)),
			PairsPerSec: float64(n) / drvTime.Seconds(),
		}, floorResult{
			rpc: pct(rpc, 50), bind: pct(b, 50), umount: pct(u, 50),
			publish: pct(fpub, 50), unpublish: pct(funpub, 50),
			pairsPerSec: float64(n) / floorTime.Seconds(),
		}, nil
}

// extraMounts adds n bind mounts that have nothing to do with the driver:
// binds of directories inside a private tmpfs of their own. undo removes
// them all (one lazy recursive unmount of the tmpfs).
func extraMounts(root string, n int) (undo func(), err error) {
	dir := filepath.Join(root, "extra")
	undo = func() {}
	if n <= 0 {
		return undo, nil
	}
	if err := os.Mkdir(dir, 0o750); err != nil {
		return undo, err
	}
	if err := unix.Mount("meshcsi-bench", dir, "tmpfs", 0, "size=16m"); err != nil {
		return undo, fmt.Errorf("mount tmpfs: %w", err)
	}
	undo = func() { _ = unix.Unmount(dir, unix.MNT_DETACH) }
	if err := unix.Mount("", dir, "", unix.MS_PRIVATE|unix.MS_REC, ""); err != nil {
		return undo, err
	}
	src := filepath.Join(dir, "src")
	if err := os.Mkdir(src, 0o750); err != nil {
		return undo, err
	}
	for i := 0; i < n; i++ {
		mp := filepath.Join(dir, "m"+strconv.Itoa(i))
		if err := os.Mkdir(mp, 0o750); err != nil {
			return undo, err
		}
		if err := unix.Mount(src, mp, "", unix.MS_BIND, ""); err != nil {
			return undo, fmt.Errorf("bind %d: %w", i, err)
		}
	}
	return undo, nil
}

// cleanupRoot unmounts whatever is left below root (after a failure) and
// removes it only when nothing is mounted there any more.
func cleanupRoot(root string) {
	_ = unix.Unmount(filepath.Join(root, "extra"), unix.MNT_DETACH)
	for i := 0; i < 1<<16; i++ {
		mps := mountsBelow(root)
		if len(mps) == 0 {
			_ = os.RemoveAll(root)
			return
		}
		if err := unix.Unmount(mps[len(mps)-1], unix.MNT_DETACH); err != nil {
			fmt.Fprintf(os.Stderr, "cleanup: %s: %v\n", mps[len(mps)-1], err)
			return
		}
	}
}

func mountsBelow(dir string) []string {
	mps, err := mountinfo.GetMounts(mountinfo.PrefixFilter(dir))
	if err != nil {
		return nil
	}
	var out []string
	for _, m := range mps {
		if m.Mountpoint != dir {
			out = append(out, m.Mountpoint)
		}
	}
	sort.Strings(out)
	return out
}

type process struct {
	cmd  *exec.Cmd
	once sync.Once
	err  error
}

// startProcess starts a server and waits until its socket answers Probe.
func startProcess(ctx context.Context, bin string, args []string, sock string) (*process, error) {
	cmd := exec.CommandContext(ctx, bin, args...) //nolint:gosec // runs the binaries it was given

	// Stdout and stderr stay nil: os/exec points them at /dev/null, so the
	// driver still encodes and writes its log lines but no goroutine of the
	// bench process has to drain a pipe between calls.
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &process{cmd: cmd}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if ok, _ := probe(sock); ok {
			return p, nil
		}
		time.Sleep(time.Millisecond)
	}
	_ = p.stop()
	return nil, fmt.Errorf("%s did not become ready", bin)
}

// stop sends SIGTERM and waits; it reports a non-zero exit.
func (p *process) stop() error {
	p.once.Do(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- p.cmd.Wait() }()
		select {
		case p.err = <-done:
		case <-time.After(15 * time.Second):
			_ = p.cmd.Process.Kill()
			p.err = errors.Join(errors.New("killed after 15s"), <-done)
		}
	})
	return p.err
}

// cpuTime is the user+system CPU time process pid has used, all threads
// (/proc/<pid>/stat, in the kernel's USER_HZ ticks of 10 ms: the scenarios
// run long enough for that); 0 if it cannot be read.
func cpuTime(pid int) time.Duration {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// The fields after the command name, which ends with the last ')':
	// state is the first, utime the 12th and stime the 13th.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 13 {
		return 0
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0
	}
	const userHZ = 100
	return time.Duration(ut+st) * time.Second / userHZ
}

func rssMiB(pid int, field string) (float64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, field); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb / 1024, err
		}
	}
	return 0, errors.New("no VmRSS")
}

func flatten(d [][]time.Duration) []time.Duration {
	var out []time.Duration
	for _, x := range d {
		out = append(out, x...)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

func pct(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := (len(sorted)*p + 99) / 100
	if i > 0 {
		i--
	}
	return sorted[i]
}

func us(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }
func ms(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e6 }

func print(w io.Writer, r *Result) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\tpairs\tworkers\tpublish p50 µs\tpublish p99 µs\tunpublish p50 µs\tunpublish p99 µs\tpairs/s\t")
	for _, s := range r.Scenarios {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.0f\t%.0f\t%.0f\t%.0f\t%.0f\t\n", s.Name, s.Pairs, s.Workers,
			s.PublishP50, s.PublishP99, s.UnpublishP50, s.UnpublishP99, s.PairsPerSec)
	}
	fmt.Fprintf(tw, "floor (no-op gRPC + syscalls)\t\t1\t%.0f\t\t%.0f\t\t%.0f\t\n", r.FloorPublishP50, r.FloorUnpublishP50, r.FloorPairsPerSec)
	_ = tw.Flush()
	fmt.Fprintf(w, "floor parts (p50): no-op gRPC round trip on a new connection %.0f µs, mkdir+open_tree+mount_setattr+move_mount %.0f µs, umount+rmdir %.0f µs\n",
		r.FloorRPCP50, r.FloorBindP50, r.FloorUmountP50)
	fmt.Fprintf(w, "driver-side mean handling time (its histogram, all scenarios): publish %.0f µs, unpublish %.0f µs\n",
		r.ServerPublishMeanUs, r.ServerUnpublishMeanUs)
	seq, one := r.Scenarios[0], r.Scenarios[1]
	fmt.Fprintf(w, "new connection per call: publish p50 / floor %.2f, unpublish p50 / floor %.2f; sequential pairs/s %.0f / floor %.0f = %.2f (target >= 0.9)\n",
		r.PublishVsFloor, r.UnpublishVsFloor, seq.PairsPerSec, r.FloorPairsPerSec, r.PairsPerSecVsFloor)
	fmt.Fprintf(w, "CPU per sequential pair on new connections (user+system, all threads): driver %.0f µs, bare server %.0f µs (its no-op calls only)\n",
		r.DriverCPUPerPairUs, r.BareCPUPerPairUs)
	fmt.Fprintf(w, "one connection: publish p50 %.0f µs / floor %.0f µs = %.2f, unpublish p50 %.0f µs / floor %.0f µs = %.2f (target <= 1.3; floor no-op round trip %.0f µs); pairs/s %.0f, floor %.0f\n",
		one.PublishP50, r.FloorOneConnPublishP50, r.OneConnPublishVsFloor, one.UnpublishP50, r.FloorOneConnUnpublishP50, r.OneConnUnpublishVsFloor, r.FloorOneConnRPCP50,
		one.PairsPerSec, r.FloorOneConnPairsPerSec)
	fmt.Fprintf(w, "readiness wait (--source-socket) with the socket there: publish p50 %.0f µs vs %.0f µs for a source without it on the same driver and connection, %+.1f µs (target <= 20); the driver's own mean wait %.1f µs\n",
		r.SocketWaitPublishP50, r.SocketWaitPlainPublishP50, r.SocketWaitOverheadP50, r.SocketWaitMeanUs)
	fmt.Fprintf(w, "with %d extra mounts / without: %.2f (target >= 0.8)\n", r.ExtraMounts, r.ExtraMountsRatio)
	fmt.Fprintf(w, "RSS after %d pairs: driver %.1f MiB (anon %.1f), bare grpc-go server %.1f MiB (anon %.1f), ratio %.2f (target <= 1.10)\n",
		r.RSSPairs, r.DriverRSSMiB, r.DriverAnonMiB, r.BareRSSMiB, r.BareAnonMiB, r.RSSRatio)
	fmt.Fprintf(w, "exec to first successful Probe: p50 %.1f ms, min %.1f ms (target <= 10); bare grpc-go server p50 %.1f ms\n",
		r.ExecToProbeP50Ms, r.ExecToProbeMinMs, r.BareExecToProbeP50Ms)
	b, _ := json.Marshal(r)
	fmt.Fprintln(w, string(b))
}

// ServeBare runs the floor server: grpc-go serving the CSI Identity and
// Node services with no-op answers on a Unix socket, until SIGTERM.
func ServeBare(ctx context.Context, sock string) error {
	_ = os.Remove(sock)
	l, err := net.Listen("unix", sock)
	if err != nil {
		return err
	}
	g := grpc.NewServer()
	csi.RegisterIdentityServer(g, bareServer{})
	csi.RegisterNodeServer(g, bareNode{})
	go func() {
		<-ctx.Done()
		g.GracefulStop()
	}()
	return g.Serve(l)
}

type bareServer struct {
	csi.UnimplementedIdentityServer
}

func (bareServer) Probe(context.Context, *csi.ProbeRequest) (*csi.ProbeResponse, error) {
	return &csi.ProbeResponse{Ready: wrapperspb.Bool(true)}, nil
}

type bareNode struct{ csi.UnimplementedNodeServer }

func (bareNode) NodePublishVolume(context.Context, *csi.NodePublishVolumeRequest) (*csi.NodePublishVolumeResponse, error) {
	return &csi.NodePublishVolumeResponse{}, nil
}

func (bareNode) NodeUnpublishVolume(context.Context, *csi.NodeUnpublishVolumeRequest) (*csi.NodeUnpublishVolumeResponse, error) {
	return &csi.NodeUnpublishVolumeResponse{}, nil
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// histogramMean reads the mean of all series of a histogram, in µs.
func histogramMean(addr, name string) float64 {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return 0
	}
	var sum float64
	var n uint64
	for _, m := range mfs[name].GetMetric() {
		sum += m.GetHistogram().GetSampleSum()
		n += m.GetHistogram().GetSampleCount()
	}
	if n == 0 {
		return 0
	}
	return sum / float64(n) * 1e6
}

// serverMeans reads the driver's duration histogram sums and counts.
func serverMeans(addr string) (publish, unpublish float64) {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return 0, 0
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return 0, 0
	}
	means := map[string]float64{}
	for _, m := range mfs["meshcsi_csi_operation_duration_seconds"].GetMetric() {
		h := m.GetHistogram()
		if h.GetSampleCount() == 0 {
			continue
		}
		for _, l := range m.GetLabel() {
			if l.GetName() == "method" {
				means[l.GetValue()] = h.GetSampleSum() / float64(h.GetSampleCount()) * 1e6
			}
		}
	}
	return means["NodePublishVolume"], means["NodeUnpublishVolume"]
}
