// Command naive-poller is the scale benchmark's baseline (make
// bench-sentinel-scale): what a removal job written without informers would
// do. Every --interval it lists every pod of the cluster in one unpaged
// request and counts those with a volume of the driver; once none is left it
// deletes the CSIDriver and the DaemonSet and exits. It is not part of
// meshcsi: only the benchmark runs it, to compare its memory, its requests
// and its reaction with the sentinel's on the same cluster.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

type config struct {
	kubeconfig, driver, daemonSet string
	interval                      time.Duration
}

func main() {
	var cfg config
	flag.StringVar(&cfg.kubeconfig, "kubeconfig", "", "kubeconfig file")
	flag.StringVar(&cfg.driver, "driver-name", "", "CSI driver name")
	flag.StringVar(&cfg.daemonSet, "daemonset", "", "the driver's DaemonSet as namespace/name")
	flag.DurationVar(&cfg.interval, "interval", 5*time.Second, "time between two lists of all pods")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg); err != nil {
		logLine("failed", map[string]any{"error": err.Error()})
		os.Exit(1)
	}
}

// logLine writes one JSON log line to stderr, as the sentinel does.
func logLine(msg string, fields map[string]any) {
	if fields == nil {
		fields = map[string]any{}
	}
	fields["msg"] = msg
	b, _ := json.Marshal(fields)
	fmt.Fprintln(os.Stderr, string(b))
}

func run(ctx context.Context, cfg config) error {
	ns, name, ok := strings.Cut(cfg.daemonSet, "/")
	if cfg.driver == "" || !ok || ns == "" || name == "" {
		return errors.New("--driver-name and --daemonset namespace/name are required")
	}
	rc, err := clientcmd.BuildConfigFromFlags("", cfg.kubeconfig)
	if err != nil {
		return fmt.Errorf("failed to load --kubeconfig: %w", err)
	}
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return fmt.Errorf("failed to create the client: %w", err)
	}
	err = wait.PollUntilContextCancel(ctx, cfg.interval, true, func(ctx context.Context) (bool, error) {
		// One unpaged list of every pod, as a script would do it.
		pods, err := cs.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
		if err != nil {
			logLine("list failed; retrying", map[string]any{"error": err.Error()})
			return false, nil
		}
		n := 0
		for i := range pods.Items {
			if usesDriver(&pods.Items[i], cfg.driver) {
				n++
			}
		}
		logLine(fmt.Sprintf("waiting for %d pods", n), map[string]any{"pods_listed": len(pods.Items)})
		return n == 0, nil
	})
	if err != nil {
		return fmt.Errorf("failed to wait for the pods: %w", err)
	}
	if err := cs.StorageV1().CSIDrivers().Delete(ctx, cfg.driver, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("failed to delete CSIDriver %s: %w", cfg.driver, err)
	}
	if err := cs.AppsV1().DaemonSets(ns).Delete(ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("failed to delete DaemonSet %s: %w", cfg.daemonSet, err)
	}
	logLine("cleanup done", nil)
	return nil
}

func usesDriver(p *corev1.Pod, driver string) bool {
	for _, v := range p.Spec.Volumes {
		if v.CSI != nil && v.CSI.Driver == driver {
			return true
		}
	}
	return false
}
