package storagesuite

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestParseReport(t *testing.T) {
	// The shape of Ginkgo v2's JSON report, trimmed.
	const raw = `[{"SuiteDescription":"x","SpecReports":[
	{"ContainerHierarchyTexts":["[sig-storage] In-tree Volumes","[Driver: local]"],"LeafNodeType":"It","LeafNodeText":"should work","State":"skipped","RunTime":0},
	{"ContainerHierarchyTexts":["External Storage [Driver: csi.meshcsi.io]","[Testpattern: CSI Ephemeral-volume (default fs)] ephemeral"],"LeafNodeType":"It","LeafNodeText":"should create read-only inline ephemeral volume","State":"passed","RunTime":12500000000},
	{"ContainerHierarchyTexts":["External Storage [Driver: csi.meshcsi.io]","[Testpattern: CSI Ephemeral-volume (default fs)] ephemeral"],"LeafNodeType":"It","LeafNodeText":"should create read/write inline ephemeral volume","State":"skipped","RunTime":1000,"Failure":{"Message":"inline ephemeral volume #0 is read-only, but the test needs a read/write volume"}},
	{"ContainerHierarchyTexts":[],"LeafNodeType":"SynchronizedBeforeSuite","LeafNodeText":"","State":"passed"}
	]}]`
	path := filepath.Join(t.TempDir(), "report.json")
	if err := os.WriteFile(path, []byte(raw), 0o600); err != nil {
		t.Fatal(err)
	}
	specs, err := ParseReport(path, regexp.MustCompile(Focus))
	if err != nil {
		t.Fatal(err)
	}
	if len(specs) != 2 {
		t.Fatalf("got %d specs, want the 2 meshcsi ones: %+v", len(specs), specs)
	}
	if s := specs[0]; s.State != "passed" || !strings.HasSuffix(s.Name, "read-only inline ephemeral volume") || s.RunTime != 12500*time.Millisecond {
		t.Errorf("spec 0: %+v", s)
	}
	if s := specs[1]; s.State != "skipped" || !strings.Contains(s.Message, "needs a read/write volume") {
		t.Errorf("spec 1: %+v", s)
	}
}

func TestParseReportMissing(t *testing.T) {
	if _, err := ParseReport(filepath.Join(t.TempDir(), "none.json"), regexp.MustCompile(Focus)); err == nil {
		t.Fatal("ParseReport of a missing file: no error")
	}
}

func TestSummaryWriter(t *testing.T) {
	var s summaryWriter
	_, _ = s.Write([]byte("noise\nRan 2 of 7412 Specs in 41.2 seconds\nSUCCESS! -- 2 Passed | 0 Failed | 0 Pending | 7410 Skipped\n"))
	_, _ = s.Write([]byte("PASS\n"))
	got := strings.Join(s.lines(), "|")
	want := "Ran 2 of 7412 Specs in 41.2 seconds|SUCCESS! -- 2 Passed | 0 Failed | 0 Pending | 7410 Skipped"
	if got != want {
		t.Errorf("summary %q, want %q", got, want)
	}
}

func TestBuildBusybox(t *testing.T) {
	if _, err := os.Stat(BusyboxBinary); err != nil {
		t.Skipf("no %s (make deps installs busybox-static)", BusyboxBinary)
	}
	archive := filepath.Join(t.TempDir(), "busybox.tar")
	if err := BuildBusybox(archive); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(archive); err != nil || fi.Size() < 1<<20 {
		t.Fatalf("archive: %v %v", fi, err)
	}
}
