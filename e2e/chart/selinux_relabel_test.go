//go:build chart

package chart

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestSELinuxRelabelCommandOnThisHost runs the relabelling init
// container's exact command and arguments, as the chart renders them, with
// this machine's GNU chcon against a real source directory holding a
// socket-like file. It cannot run the default image (no registry here) nor
// prove a label on an SELinux node unless this host is one; it pins what
// the command does where it runs:
//   - SELinux off (this CI machine): chcon accepts the options and walks the
//     directory, then fails on every unlabelled file ("can't apply partial
//     context to unlabeled file"), so on a node without SELinux the init
//     container fails and the driver pod does not start (docs/chart.md);
//   - SELinux on: it exits 0 and the files carry container_file_t, s0.
func TestSELinuxRelabelCommandOnThisHost(t *testing.T) {
	chcon, err := exec.LookPath("chcon")
	if err != nil {
		t.Skip("no chcon on this host (Debian's coreutils has it)")
	}
	src := filepath.Join(t.TempDir(), "agent-sockets")
	if err := os.Mkdir(src, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "agent.sock"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	set := map[string]string{"driver.seLinuxRelabel.enabled": "true", "sources.spire-agent.path": src}
	inits := daemonSet(t, render(t, newHelm(t), set), set).Spec.Template.Spec.InitContainers
	if len(inits) != 1 || len(inits[0].Command) == 0 {
		t.Fatalf("want one relabelling init container with a command, got %+v", inits)
	}
	ic := inits[0]
	if ic.Command[0] != "chcon" {
		t.Fatalf("the init container runs %q, not chcon: update this test and docs/chart.md", ic.Command[0])
	}
	args := append(append([]string{}, ic.Command[1:]...), ic.Args...)
	if args[len(args)-1] != src {
		t.Fatalf("the init container's arguments %q do not end with the source directory %s", args, src)
	}
	cmd := exec.Command(chcon, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err = cmd.Run()
	t.Logf("%s %s: %v\n%s", ic.Command[0], strings.Join(args, " "), err, stderr.String())
	if _, statErr := os.Stat("/sys/fs/selinux/enforce"); statErr != nil {
		var exit *exec.ExitError
		if !errors.As(err, &exit) || !strings.Contains(stderr.String(), "can't apply partial context to unlabeled file") {
			t.Errorf("without SELinux: %v, want chcon to fail on the unlabelled files (docs/chart.md says the init container fails there)", err)
		}
		return
	}
	if err != nil {
		t.Fatalf("with SELinux the relabelling command failed: %v", err)
	}
	for _, p := range []string{src, filepath.Join(src, "agent.sock")} {
		label := make([]byte, 256)
		n, err := unix.Getxattr(p, "security.selinux", label)
		if err != nil {
			t.Fatal(err)
		}
		if l := string(bytes.TrimRight(label[:n], "\x00")); !strings.Contains(l, ":container_file_t:s0") {
			t.Errorf("%s is labelled %q, want type container_file_t, level s0", p, l)
		}
	}
}
