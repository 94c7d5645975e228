// Package kubeclient builds the Kubernetes client configuration of a meshcsi
// binary that talks to the API server (today the sentinel): an explicit
// kubeconfig when one is given, otherwise the in-cluster service account,
// with a user agent that names the component so its requests can be told
// apart in API server logs and audit. It also routes client-go's klog output
// through the binary's zap logger.
package kubeclient

import (
	"errors"
	"fmt"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// Options selects and tunes the connection.
type Options struct {
	// Kubeconfig is a kubeconfig file path; empty means in-cluster config.
	Kubeconfig string
	// Context is the kubeconfig context to use; empty means current.
	Context string
	// UserAgent identifies the component, e.g. "meshcsi-sentinel/v0.1.0".
	UserAgent string
	// QPS and Burst bound the client's request rate; zero keeps client-go's defaults.
	QPS   float32
	Burst int
}

// ErrNoConfig is returned when neither a kubeconfig nor an in-cluster
// environment is available.
var ErrNoConfig = errors.New("no kubernetes configuration: pass --kubeconfig or run in a cluster")

// RESTConfig returns the rest.Config described by o.
func RESTConfig(o Options) (*rest.Config, error) {
	var (
		cfg *rest.Config
		err error
	)
	if o.Kubeconfig != "" {
		rules := &clientcmd.ClientConfigLoadingRules{ExplicitPath: o.Kubeconfig}
		overrides := &clientcmd.ConfigOverrides{CurrentContext: o.Context}
		cfg, err = clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides).ClientConfig()
		if err != nil {
			return nil, fmt.Errorf("failed to load kubeconfig %s: %w", o.Kubeconfig, err)
		}
	} else {
		cfg, err = rest.InClusterConfig()
		if errors.Is(err, rest.ErrNotInCluster) {
			return nil, ErrNoConfig
		}
		if err != nil {
			return nil, fmt.Errorf("failed to load in-cluster config: %w", err)
		}
	}
	if o.UserAgent != "" {
		cfg.UserAgent = o.UserAgent
	}
	if o.QPS > 0 {
		cfg.QPS = o.QPS
	}
	if o.Burst > 0 {
		cfg.Burst = o.Burst
	}
	return cfg, nil
}
