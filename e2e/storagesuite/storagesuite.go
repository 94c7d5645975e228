// Package storagesuite runs Kubernetes' own storage e2e suite (the
// External.Storage tests of k8s.io/kubernetes/test/e2e/storage/external,
// built by mk/60-proof.mk from e2e/storage) against meshcsi on the local
// cluster, and reads back which specs ran, passed or skipped and why.
//
// The suite's test pods use Kubernetes' e2e busybox image. There is no
// registry here: BuildBusybox makes a local image from Debian's static
// busybox, and RepoList points the suite's image registry at its name.
package storagesuite

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/meshcsi/meshcsi/libs/kubeharness/image"
)

// BinaryEnv names the suite's test binary (exported by the Makefile).
const BinaryEnv = "MESHCSI_STORAGE_E2E"

// Focus selects meshcsi's CSI ephemeral-volume specs.
const Focus = `External.Storage.*csi.meshcsi.io.*CSI Ephemeral-volume`

// Registry is where the suite looks for its e2e test images (remapped with
// KUBE_TEST_REPO_LIST); a short name, so the runtime never asks a registry.
const Registry = "meshcsi/e2e-test-images"

// BusyboxRef is the suite's busybox image (1.36.1-1 in Kubernetes v1.33)
// under Registry.
const BusyboxRef = Registry + "/busybox:1.36.1-1"

// BusyboxBinary is Debian's static busybox (package busybox-static).
const BusyboxBinary = "/bin/busybox"

// BuildBusybox writes the busybox image the suite's pods run: Debian's
// static busybox as /bin/busybox and /bin/sh. Its shell runs applets
// (mount, grep, sleep, ...) without a PATH lookup, which is all the suite's
// commands (`/bin/sh -c ...`) need.
func BuildBusybox(archive string) error {
	bb, err := os.ReadFile(BusyboxBinary)
	if err != nil {
		return fmt.Errorf("failed to read %s (install busybox-static): %w", BusyboxBinary, err)
	}
	return image.BuildArchive(image.Spec{
		Ref: BusyboxRef,
		Files: []image.File{
			{Path: "/bin/busybox", Data: bb, Mode: 0o755},
			{Path: "/bin/sh", Data: bb, Mode: 0o755},
		},
		Entrypoint: []string{"/bin/sh"},
		Labels:     map[string]string{"org.opencontainers.image.description": "Debian's busybox-static as Kubernetes' e2e busybox image"},
	}, archive)
}

// RepoList is the KUBE_TEST_REPO_LIST file content that maps the suite's
// e2e test image registry to Registry.
func RepoList() string {
	return "promoterE2eRegistry: " + Registry + "\n"
}

// Options configures Run.
type Options struct {
	// Binary is the suite's test binary.
	Binary string
	// Kubeconfig of the cluster.
	Kubeconfig string
	// DriverFile is the external driver definition (e2e/storage/testdriver.yaml).
	DriverFile string
	// Dir receives the repo list, the JSON report and the log.
	Dir string
	// Focus selects specs (Focus if empty).
	Focus string
	// Output receives the suite's output as it runs (may be nil).
	Output io.Writer
}

// Spec is one spec of the suite as it ended.
type Spec struct {
	// Name is the spec's full text.
	Name string
	// State is Ginkgo's: passed, skipped, failed, ...
	State string
	// Message is the failure or skip reason.
	Message string
	// RunTime is how long it ran.
	RunTime time.Duration
}

// Result is what a run of the suite reported.
type Result struct {
	// Summary is Ginkgo's closing summary ("Ran N of M Specs ...",
	// "SUCCESS! -- ...").
	Summary []string
	// Specs are the specs Focus selects, in report order.
	Specs []Spec
	// Log is the path of the full output.
	Log string
}

// Run runs the suite and parses its report. The error is non-nil when the
// suite failed or did not report; Result is filled as far as possible.
func Run(ctx context.Context, o Options) (*Result, error) {
	if o.Focus == "" {
		o.Focus = Focus
	}
	focus, err := regexp.Compile(o.Focus)
	if err != nil {
		return nil, fmt.Errorf("invalid focus %q: %w", o.Focus, err)
	}
	if err := os.MkdirAll(o.Dir, 0o750); err != nil {
		return nil, fmt.Errorf("failed to create %s: %w", o.Dir, err)
	}
	repoList := filepath.Join(o.Dir, "repo-list.yaml")
	if err := os.WriteFile(repoList, []byte(RepoList()), 0o600); err != nil {
		return nil, fmt.Errorf("failed to write %s: %w", repoList, err)
	}
	report := filepath.Join(o.Dir, "report.json")
	res := &Result{Log: filepath.Join(o.Dir, "suite.log")}
	logFile, err := os.Create(res.Log)
	if err != nil {
		return nil, fmt.Errorf("failed to create %s: %w", res.Log, err)
	}
	defer func() { _ = logFile.Close() }()
	var out io.Writer = logFile
	if o.Output != nil {
		out = io.MultiWriter(logFile, o.Output)
	}
	//nolint:gosec // the binary and arguments are the test's own
	cmd := exec.CommandContext(ctx, o.Binary,
		"--provider=local",
		"--kubeconfig="+o.Kubeconfig,
		"--storage.testdriver="+o.DriverFile,
		"--report-dir="+o.Dir,
		"--ginkgo.focus="+o.Focus,
		"--ginkgo.json-report="+report,
		"--ginkgo.no-color",
		"--ginkgo.v",
	)
	cmd.Dir = o.Dir
	cmd.Env = append(os.Environ(), "KUBE_TEST_REPO_LIST="+repoList)
	summary := &summaryWriter{}
	cmd.Stdout = io.MultiWriter(out, summary)
	cmd.Stderr = out
	runErr := cmd.Run()
	res.Summary = summary.lines()
	specs, err := ParseReport(report, focus)
	res.Specs = specs
	if runErr != nil {
		return res, fmt.Errorf("the storage suite failed: %w (log %s)", runErr, res.Log)
	}
	if err != nil {
		return res, err
	}
	return res, nil
}

// summaryWriter keeps Ginkgo's closing summary lines.
type summaryWriter struct {
	buf  strings.Builder
	keep []string
}

func (s *summaryWriter) Write(p []byte) (int, error) {
	s.buf.Write(p)
	return len(p), nil
}

var summaryLine = regexp.MustCompile(`^(Ran \d+ of \d+ Specs|SUCCESS!|FAIL!|Test Suite (Passed|Failed))`)

func (s *summaryWriter) lines() []string {
	sc := bufio.NewScanner(strings.NewReader(s.buf.String()))
	sc.Buffer(make([]byte, 0, 64*1024), 4*1024*1024)
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); summaryLine.MatchString(l) {
			s.keep = append(s.keep, l)
		}
	}
	return s.keep
}

// report is the part of Ginkgo's JSON report read here.
type report struct {
	SpecReports []struct {
		ContainerHierarchyTexts []string
		LeafNodeText            string
		LeafNodeType            string
		State                   string
		RunTime                 time.Duration
		Failure                 struct {
			Message string
		}
	}
}

// ParseReport reads a Ginkgo JSON report and returns the It specs whose full
// text matches focus.
func ParseReport(path string, focus *regexp.Regexp) ([]Spec, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("failed to read the suite's report: %w", err)
	}
	var reports []report
	if err := json.Unmarshal(raw, &reports); err != nil {
		return nil, fmt.Errorf("failed to parse %s: %w", path, err)
	}
	if len(reports) == 0 {
		return nil, errors.New("the suite's report is empty")
	}
	var specs []Spec
	for _, r := range reports {
		for _, sr := range r.SpecReports {
			if sr.LeafNodeType != "It" {
				continue
			}
			name := strings.Join(append(append([]string{}, sr.ContainerHierarchyTexts...), sr.LeafNodeText), " ")
			if !focus.MatchString(name) {
				continue
			}
			specs = append(specs, Spec{Name: name, State: sr.State, Message: strings.TrimSpace(sr.Failure.Message), RunTime: sr.RunTime})
		}
	}
	return specs, nil
}
