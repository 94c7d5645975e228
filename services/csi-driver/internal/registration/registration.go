// Package registration serves the kubelet's plugin-registration API
// (k8s.io/kubelet/pkg/apis/pluginregistration/v1) so that the driver
// registers itself, without the node-driver-registrar sidecar: the kubelet's
// plugin watcher finds the socket in <kubelet-dir>/plugins_registry/, calls
// GetInfo, then reports the outcome with NotifyRegistrationStatus. A failed
// registration is logged with the kubelet's reason; the kubelet retries on
// its next attempt (for instance after it restarts).
package registration

import (
	"context"
	"errors"

	"go.uber.org/zap"
	"google.golang.org/grpc"
	registerapi "k8s.io/kubelet/pkg/apis/pluginregistration/v1"
)

// SupportedVersions are the CSI versions the driver speaks.
var SupportedVersions = []string{"1.0.0"}

// Config holds what a Server needs.
type Config struct {
	// DriverName is the CSI driver name. Required.
	DriverName string
	// Endpoint is the CSI socket path the kubelet dials. Required.
	Endpoint string
	// Logger receives the registration outcome. Required.
	Logger *zap.Logger
}

// Server answers the kubelet's plugin watcher.
type Server struct {
	registerapi.UnimplementedRegistrationServer
	cfg Config
}

// New validates cfg and builds a Server.
func New(cfg Config) (*Server, error) {
	switch {
	case cfg.DriverName == "":
		return nil, errors.New("registration: --driver-name is required")
	case cfg.Endpoint == "":
		return nil, errors.New("registration: --endpoint is required")
	case cfg.Logger == nil:
		return nil, errors.New("registration: a logger is required")
	}
	return &Server{cfg: cfg}, nil
}

// Register adds the registration service to a gRPC server.
func (s *Server) Register(g *grpc.Server) { registerapi.RegisterRegistrationServer(g, s) }

// GetInfo implements the plugin-registration API.
func (s *Server) GetInfo(context.Context, *registerapi.InfoRequest) (*registerapi.PluginInfo, error) {
	return &registerapi.PluginInfo{
		Type:              registerapi.CSIPlugin,
		Name:              s.cfg.DriverName,
		Endpoint:          s.cfg.Endpoint,
		SupportedVersions: SupportedVersions,
	}, nil
}

// NotifyRegistrationStatus implements the plugin-registration API.
func (s *Server) NotifyRegistrationStatus(_ context.Context, st *registerapi.RegistrationStatus) (*registerapi.RegistrationStatusResponse, error) {
	if st.PluginRegistered {
		s.cfg.Logger.Info("registered with the kubelet", zap.String("driver", s.cfg.DriverName), zap.String("endpoint", s.cfg.Endpoint))
	} else {
		s.cfg.Logger.Error("the kubelet refused the registration; it retries on its next attempt",
			zap.String("driver", s.cfg.DriverName), zap.String("reason", st.Error))
	}
	return &registerapi.RegistrationStatusResponse{}, nil
}
