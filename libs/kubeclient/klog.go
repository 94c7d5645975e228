package kubeclient

import (
	"github.com/go-logr/zapr"
	"go.uber.org/zap"
	"k8s.io/klog/v2"
)

// RouteKlog sends client-go's own logging (klog: leader election, reflectors,
// event broadcasters) through log, so a binary writes one structured format
// instead of interleaving klog's text lines with its JSON. klog verbosity
// V(n) maps to zap level -n, so client-go's chatty V(2+) lines appear only
// when log is at debug level or lower.
func RouteKlog(log *zap.Logger) {
	klog.SetLogger(zapr.NewLogger(log.Named("client-go")))
}
