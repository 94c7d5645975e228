// Package kubeharness runs real Kubernetes components on this machine for
// integration tests, end-to-end tests and the demo.
//
// ControlPlane mode starts etcd and kube-apiserver (optionally
// kube-controller-manager) on loopback ports with generated certificates and
// an admin kubeconfig, in a few seconds and without root. Node mode adds
// kube-controller-manager, kube-scheduler, containerd with runc and the CNI
// bridge, the kubelet and kube-proxy: a single-node cluster whose pods run
// images built locally (see the image subpackage) and reach nothing but this
// machine.
//
// The Kubernetes binaries come from `make kube-binaries`
// ($HOME/.cache/meshcsi/kube/<version>/bin, or $MESHCSI_KUBE_BIN_DIR); etcd,
// containerd, runc and the CNI plugins from Debian packages.
//
//	c, err := kubeharness.Start(ctx, kubeharness.Options{Mode: kubeharness.ControlPlane})
//	if err != nil { ... }
//	defer c.Stop(context.Background())
//	client := kubernetes.NewForConfigOrDie(c.RESTConfig())
package kubeharness
