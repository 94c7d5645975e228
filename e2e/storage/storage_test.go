//go:build e2e

// Package storage is Kubernetes' own storage e2e suite, built as a test
// binary that holds only the e2e framework and the external-driver tests
// (k8s.io/kubernetes/test/e2e/storage/external): meshcsi is described in
// testdriver.yaml and tested by the suite Kubernetes' CSI drivers are tested
// by. The module stays outside go.work (like libs/kubeharness/kubebuild):
// k8s.io/kubernetes needs a replace block for its staging modules, which must
// not leak into the workspace.
//
// mk/60-proof.mk builds it with `go test -c -tags e2e -vet=off`; the e2e
// suite (e2e/case_storage_suite_test.go) runs it against the local cluster:
//
//	storage-e2e.test --provider=local --kubeconfig=K \
//	  --storage.testdriver=testdriver.yaml \
//	  --ginkgo.focus='External.Storage.*csi.meshcsi.io.*CSI Ephemeral-volume'
package storage

import (
	"flag"
	"os"
	"testing"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/gomega"

	"k8s.io/kubernetes/test/e2e/framework"
	"k8s.io/kubernetes/test/e2e/framework/config"
	// Logs and dumps on failure, as in the full e2e.test.
	_ "k8s.io/kubernetes/test/e2e/framework/debug/init"
	// Registers --storage.testdriver and the External Storage specs.
	_ "k8s.io/kubernetes/test/e2e/storage/external"
)

func TestMain(m *testing.M) {
	config.CopyFlags(config.Flags, flag.CommandLine)
	framework.RegisterCommonFlags(flag.CommandLine)
	framework.RegisterClusterFlags(flag.CommandLine)
	flag.Parse()
	framework.AfterReadingAllFlags(&framework.TestContext)
	os.Exit(m.Run())
}

func TestStorage(t *testing.T) {
	gomega.RegisterFailHandler(framework.Fail)
	suiteConfig, reporterConfig := framework.CreateGinkgoConfig()
	ginkgo.RunSpecs(t, "Kubernetes storage e2e suite (external driver)", suiteConfig, reporterConfig)
}
