// Package node implements the CSI Identity and Node services: it validates
// every request, serialises the calls for one target, and asks a Mounter to
// bind-mount an admin-configured source directory read-only into a pod.
package node

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"go.uber.org/zap"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/meshcsi/meshcsi/services/csi-driver/internal/config"
	"github.com/meshcsi/meshcsi/services/csi-driver/internal/logfield"
	"github.com/meshcsi/meshcsi/services/csi-driver/internal/metrics"
	"github.com/meshcsi/meshcsi/services/csi-driver/internal/mount"
)

// Config holds what a Service needs.
type Config struct {
	// DriverName is returned by GetPluginInfo. Required.
	DriverName string
	// Version is returned by GetPluginInfo as the vendor version.
	Version string
	// NodeID is returned by NodeGetInfo. Required.
	NodeID string
	// PodsDir is <kubelet-dir>/pods; every target must lie below it. Required.
	PodsDir string
	// Sources are the publishable directories. At least one.
	Sources []config.Source
	// DefaultSource is used when a volume names none; may be empty.
	DefaultSource string
	// Mounter performs the mounts. Required.
	Mounter mount.Mounter
	// Metrics receives the published and source-ready gauges. Required.
	Metrics *metrics.Metrics
	// Logger receives one line per publish and unpublish. Required.
	Logger *zap.Logger
	// Namespaces reads namespace labels; required when a source has a
	// namespace selector.
	Namespaces Namespaces
	// SocketWait bounds the wait for a source's socket; zero means
	// config.DefaultSocketWait.
	SocketWait time.Duration
	// SocketPoll is how often the wait retries; zero means
	// DefaultSocketPoll.
	SocketPoll time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Service serves the CSI Identity and Node services.
type Service struct {
	csi.UnimplementedIdentityServer
	csi.UnimplementedNodeServer

	driverName, version, nodeID string
	podsDir                     string
	sources                     map[string]bool
	sourceNames                 []string
	sockets                     map[string]string
	ready                       map[string]*readiness
	access                      map[string]*access
	namespaces                  Namespaces
	socketWait, socketPoll      time.Duration
	defaultSource               string
	mounter                     mount.Mounter
	metrics                     *metrics.Metrics
	log                         *zap.Logger
	now                         func() time.Time
	serving                     atomic.Bool
	locks                       keyedMutex
	// gate is held for writing while the start-up count runs, so that no
	// publish or unpublish races it (Identity calls are not held).
	gate sync.RWMutex
}

// New validates cfg and builds a Service.
func New(cfg Config) (*Service, error) {
	switch {
	case cfg.DriverName == "":
		return nil, errors.New("node: --driver-name is required")
	case cfg.NodeID == "":
		return nil, errors.New("node: --node-id is required")
	case cfg.PodsDir == "":
		return nil, errors.New("node: --kubelet-dir is required")
	case len(cfg.Sources) == 0:
		return nil, errors.New("node: at least one --source is required")
	case cfg.Mounter == nil, cfg.Metrics == nil, cfg.Logger == nil:
		return nil, errors.New("node: a mounter, metrics and a logger are required")
	}
	s := &Service{
		driverName:    cfg.DriverName,
		version:       cfg.Version,
		nodeID:        cfg.NodeID,
		podsDir:       cfg.PodsDir,
		sources:       make(map[string]bool, len(cfg.Sources)),
		sockets:       map[string]string{},
		ready:         map[string]*readiness{},
		access:        map[string]*access{},
		namespaces:    cfg.Namespaces,
		socketWait:    cfg.SocketWait,
		socketPoll:    cfg.SocketPoll,
		defaultSource: cfg.DefaultSource,
		mounter:       cfg.Mounter,
		metrics:       cfg.Metrics,
		log:           cfg.Logger,
		now:           cfg.Now,
		locks:         keyedMutex{m: map[string]*keyedEntry{}},
	}
	// The per-call lines carry no caller: capturing it (a stack walk and
	// a path trim) was a third of a line's cost, and each message is
	// written from one place.
	s.log = cfg.Logger.WithOptions(zap.WithCaller(false))
	if s.now == nil {
		s.now = time.Now
	}
	if s.socketWait <= 0 {
		s.socketWait = config.DefaultSocketWait
	}
	if s.socketPoll <= 0 {
		s.socketPoll = DefaultSocketPoll
	}
	for _, src := range cfg.Sources {
		s.sources[src.Name] = true
		s.sourceNames = append(s.sourceNames, src.Name)
		if src.Socket != "" {
			s.sockets[src.Name] = socketPath(src.Dir, src.Socket)
			s.ready[src.Name] = &readiness{}
		}
		a, err := newAccess(src)
		if err != nil {
			return nil, err
		}
		if a != nil {
			s.access[src.Name] = a
		}
		if a != nil && a.selector != nil && cfg.Namespaces == nil {
			return nil, fmt.Errorf("node: --source-namespace-selector %s needs a namespaces reader", src.Name)
		}
	}
	if s.defaultSource != "" {
		if !s.sources[s.defaultSource] {
			return nil, fmt.Errorf("node: --default-source %q is not a configured --source", s.defaultSource)
		}
	}
	return s, nil
}

// Pause holds publish and unpublish calls until resume is called. The
// server pauses before it starts serving and resumes once it has counted
// what an earlier instance published.
func (s *Service) Pause() (resume func()) {
	s.gate.Lock()
	return s.gate.Unlock
}

// SetServing records whether the gRPC server is serving; Probe reports
// not ready until it is.
func (s *Service) SetServing(v bool) { s.serving.Store(v) }

// GetPluginInfo implements csi.IdentityServer.
func (s *Service) GetPluginInfo(context.Context, *csi.GetPluginInfoRequest) (*csi.GetPluginInfoResponse, error) {
	return &csi.GetPluginInfoResponse{Name: s.driverName, VendorVersion: s.version}, nil
}

// GetPluginCapabilities implements csi.IdentityServer: a node-only plugin
// has no controller service and no topology.
func (s *Service) GetPluginCapabilities(context.Context, *csi.GetPluginCapabilitiesRequest) (*csi.GetPluginCapabilitiesResponse, error) {
	return &csi.GetPluginCapabilitiesResponse{}, nil
}

// Probe implements csi.IdentityServer: ready when the server is serving and
// every source directory exists.
func (s *Service) Probe(context.Context, *csi.ProbeRequest) (*csi.ProbeResponse, error) {
	return &csi.ProbeResponse{Ready: wrapperspb.Bool(s.Ready() == nil)}, nil
}

// Ready returns nil when the driver can publish every source; it also
// refreshes the source-ready gauge. /readyz uses it.
func (s *Service) Ready() error {
	var errs []error
	for _, name := range s.sourceNames {
		err := s.mounter.CheckSource(name)
		s.metrics.SetSourceReady(name, err == nil)
		if err != nil {
			errs = append(errs, fmt.Errorf("source %s: %w", name, err))
		}
	}
	if !s.serving.Load() {
		errs = append(errs, errors.New("the CSI server is not serving"))
	}
	return errors.Join(errs...)
}

// NodeGetInfo implements csi.NodeServer.
func (s *Service) NodeGetInfo(context.Context, *csi.NodeGetInfoRequest) (*csi.NodeGetInfoResponse, error) {
	return &csi.NodeGetInfoResponse{NodeId: s.nodeID}, nil
}

// NodeGetCapabilities implements csi.NodeServer. The driver advertises
// neither volume stats nor volume condition: usage would be that of the
// host file system holding the socket, and a condition-only reply is an
// error for a kubelet without the CSIVolumeHealth feature gate.
func (s *Service) NodeGetCapabilities(context.Context, *csi.NodeGetCapabilitiesRequest) (*csi.NodeGetCapabilitiesResponse, error) {
	return &csi.NodeGetCapabilitiesResponse{}, nil
}

// NodePublishVolume implements csi.NodeServer. Order matters: everything
// that needs no lock (validation, the namespace check, the wait for the
// agent's socket) comes first, so a waiting publish holds up nobody.
func (s *Service) NodePublishVolume(ctx context.Context, req *csi.NodePublishVolumeRequest) (*csi.NodePublishVolumeResponse, error) {
	start := s.now()
	p, err := s.validatePublish(req)
	if err != nil {
		return nil, toStatus(err)
	}
	if err := s.checkAccess(p.source, p.namespace); err != nil {
		if errors.Is(err, errDenied) {
			s.revoke(p)
		}
		return nil, toStatus(err)
	}
	if err := s.waitSocket(ctx, p.source); err != nil {
		return nil, toStatus(err)
	}
	s.gate.RLock()
	defer s.gate.RUnlock()
	unlock := s.locks.lock(p.target)
	defer unlock()
	res, err := s.mounter.Publish(p.source, p.target)
	if res.Delta != 0 {
		s.metrics.AddPublished(res.Source, float64(res.Delta))
	}
	var srcErr *mount.SourceError
	switch {
	case errors.As(err, &srcErr):
		s.metrics.SetSourceReady(p.source, false)
		return nil, toStatus(err)
	case err != nil:
		s.countForeign("NodePublishVolume", err)
		return nil, toStatus(err)
	}
	s.metrics.SetSourceReady(p.source, true)
	vc := req.GetVolumeContext()
	s.log.Info("published volume",
		logfield.String("volume_id", p.volumeID),
		logfield.String("target_path", p.target),
		logfield.String("namespace", vc[KeyPodNamespace]),
		logfield.String("pod", vc[KeyPodName]),
		zap.String("source", p.source),
		zap.String("outcome", res.Outcome.String()),
		zap.Duration("duration", s.now().Sub(start)),
	)
	return &csi.NodePublishVolumeResponse{}, nil
}

// revoke undoes a mount of ours at the target of a publish refused with
// PermissionDenied. The kubelet publishes again when it does not know
// whether a publish worked; if the namespace lost access in between, the
// refusal is final for the kubelet, which then forgets the volume and never
// unpublishes it: a mount made by the first call would stay in the pod's
// directory for good. Only what Unpublish would remove is removed (nothing
// foreign, nothing outside the target); a failure is logged, and the
// refusal stands either way.
func (s *Service) revoke(p publishRequest) {
	s.gate.RLock()
	defer s.gate.RUnlock()
	unlock := s.locks.lock(p.target)
	defer unlock()
	res, err := s.mounter.Unpublish(p.target)
	if res.Delta != 0 {
		s.metrics.AddPublished(res.Source, float64(res.Delta))
	}
	switch {
	case err != nil && !errors.Is(err, mount.ErrNotEmpty):
		s.countForeign("NodePublishVolume", err)
		s.log.Warn("could not check the target of a refused publish for an earlier mount",
			logfield.String("volume_id", p.volumeID), logfield.String("target_path", p.target),
			zap.String("source", p.source), logfield.String("error", err.Error()))
	case res.Unmounted > 0:
		s.log.Warn("undid an earlier publish: the namespace may no longer use the source",
			logfield.String("volume_id", p.volumeID), logfield.String("target_path", p.target),
			logfield.String("namespace", p.namespace), zap.String("source", p.source),
			zap.Int("unmounted", res.Unmounted))
	}
}

// NodeUnpublishVolume implements csi.NodeServer. A missing or unmounted
// target succeeds: a replayed unpublish must never strand a pod. A target
// holding something the driver did not make is left untouched and refused
// (FailedPrecondition naming what is there), never reported as unpublished.
func (s *Service) NodeUnpublishVolume(_ context.Context, req *csi.NodeUnpublishVolumeRequest) (*csi.NodeUnpublishVolumeResponse, error) {
	start := s.now()
	if err := validateVolumeID(req.GetVolumeId()); err != nil {
		return nil, toStatus(err)
	}
	target, err := s.validateTarget(req.GetTargetPath())
	if err != nil {
		return nil, toStatus(err)
	}
	s.gate.RLock()
	defer s.gate.RUnlock()
	unlock := s.locks.lock(target)
	defer unlock()
	res, err := s.mounter.Unpublish(target)
	if res.Delta != 0 {
		s.metrics.AddPublished(res.Source, float64(res.Delta))
	}
	if errors.Is(err, mount.ErrNotEmpty) {
		s.log.Warn("left a non-empty target that is not a mount in place",
			logfield.String("volume_id", req.GetVolumeId()), logfield.String("target_path", target))
		err = nil
	}
	if err != nil {
		s.countForeign("NodeUnpublishVolume", err)
		return nil, toStatus(err)
	}
	s.log.Info("unpublished volume",
		logfield.String("volume_id", req.GetVolumeId()),
		logfield.String("target_path", target),
		zap.String("source", res.Source),
		zap.Int("unmounted", res.Unmounted),
		zap.Duration("duration", s.now().Sub(start)),
	)
	return &csi.NodeUnpublishVolumeResponse{}, nil
}

// countForeign counts a call refused because the target held something the
// driver did not make.
func (s *Service) countForeign(method string, err error) {
	var notOurs *mount.NotOursError
	if errors.As(err, &notOurs) {
		s.metrics.ForeignTarget(method, notOurs.Kind)
	}
}

// CountPublished sets the published-volumes gauge from the mounts of ours an
// earlier instance left below the pods directory (the mounter reads the
// mount table once) and returns the count per source. Call it while paused.
func (s *Service) CountPublished() (map[string]int, error) {
	counts, err := s.mounter.Recover()
	for name, n := range counts {
		s.metrics.AddPublished(name, float64(n))
	}
	return counts, err
}

// keyedMutex serialises the calls for one target; entries are dropped when
// no call holds or waits for them, so the map stays as small as the number
// of targets in flight.
type keyedMutex struct {
	mu sync.Mutex
	m  map[string]*keyedEntry
}

type keyedEntry struct {
	mu   sync.Mutex
	refs int
}

func (k *keyedMutex) lock(key string) (unlock func()) {
	k.mu.Lock()
	e, ok := k.m[key]
	if !ok {
		e = &keyedEntry{}
		k.m[key] = e
	}
	e.refs++
	k.mu.Unlock()
	e.mu.Lock()
	return func() {
		e.mu.Unlock()
		k.mu.Lock()
		e.refs--
		if e.refs == 0 {
			delete(k.m, key)
		}
		k.mu.Unlock()
	}
}
