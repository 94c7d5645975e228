//go:build linux

package mount_test

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"golang.org/x/sys/unix"

	tc "github.com/meshcsi/meshcsi/services/csi-driver/internal/drivertest"
	"github.com/meshcsi/meshcsi/services/csi-driver/internal/mount"
)

// Tests for the findings of issue 9 at the mount layer. Each of them failed
// on the driver before the descriptor-anchored rewrite.

const trials = 2000

// snapshot describes a tree and the mounts below it, to compare before and
// after an attack.
func snapshot(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "%s %v\n", strings.TrimPrefix(p, dir), d.Type())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	mps := tc.MountsBelow(t, dir)
	sort.Strings(mps)
	fmt.Fprintf(&b, "mounts %q\n", mps)
	return b.String()
}

// swapper exchanges dir and link (a symbolic link) with renameat2
// RENAME_EXCHANGE in a loop until stopped, and leaves dir a directory.
type swapper struct {
	stop atomic.Bool
	wg   sync.WaitGroup
}

func swap(dir, link string) *swapper {
	s := &swapper{}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		swapped := false
		for !s.stop.Load() {
			if unix.Renameat2(unix.AT_FDCWD, dir, unix.AT_FDCWD, link, unix.RENAME_EXCHANGE) == nil {
				swapped = !swapped
			}
		}
		if swapped {
			_ = unix.Renameat2(unix.AT_FDCWD, dir, unix.AT_FDCWD, link, unix.RENAME_EXCHANGE)
		}
	}()
	return s
}

func (s *swapper) halt() { s.stop.Store(true); s.wg.Wait() }

// decoyTree builds, outside the pods directory, a tree standing in for the
// directory swapped at each level of the target path: at its "mount" a tmpfs
// mount (even levels) or a regular file (odd levels). It returns, per level,
// the swapped directory and its decoy.
func decoyTree(t *testing.T, target string) (swapped, decoys []string) {
	t.Helper()
	root := tc.TempDir(t, "decoy")
	name := filepath.Dir(target) // <name>
	csiDir := filepath.Dir(name) // kubernetes.io~csi
	for i, d := range []string{name, csiDir} {
		rel, _ := filepath.Rel(d, target)
		decoy := filepath.Join(root, fmt.Sprint(i))
		at := filepath.Join(decoy, rel)
		if err := os.MkdirAll(filepath.Dir(at), 0o755); err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 {
			if err := os.Mkdir(at, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := unix.Mount("tmpfs", at, "tmpfs", 0, "size=64k"); err != nil {
				t.Fatal(err)
			}
			// Also make it look like ours: read-only, nosuid, nodev, noexec.
			if err := unix.Mount("", at, "", unix.MS_REMOUNT|unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
				t.Fatal(err)
			}
		} else if err := os.WriteFile(at, []byte("outside"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(decoy, d+".link"); err != nil {
			t.Fatal(err)
		}
		swapped = append(swapped, d)
		decoys = append(decoys, root)
	}
	return swapped, decoys
}

// TestRootUnpublishParentSwapRace (finding 1): a directory of the target path
// is swapped for a symbolic link to a decoy tree outside the pods directory
// while unpublish runs. Unpublish must never unmount or remove anything
// there. The old code unmounted the outside mount in ~20% and removed the
// outside file in ~20% of 2,000 tries.
func TestRootUnpublishParentSwapRace(t *testing.T) {
	e := newEnv(t, "vol")
	target := tc.Target(e.kd, "vol")
	swapped, decoys := decoyTree(t, target)
	before := snapshot(t, decoys[0])
	unmounted, refused := 0, 0
	for i := 0; i < trials; i++ {
		if _, err := e.m.Publish("agent", target); err != nil {
			t.Fatalf("trial %d: Publish = %v", i, err)
		}
		d := swapped[i%len(swapped)]
		s := swap(d, d+".link")
		r, err := e.m.Unpublish(target)
		s.halt()
		if err != nil && !errors.Is(err, mount.ErrSymlink) {
			t.Fatalf("trial %d: Unpublish = %+v, %v", i, r, err)
		}
		if err != nil {
			refused++
		}
		unmounted += r.Unmounted
		if after := snapshot(t, decoys[0]); after != before {
			t.Fatalf("trial %d: the decoy tree outside the pods directory changed:\nbefore %s\nafter %s", i, before, after)
		}
		if err != nil { // the swap was seen: finish without it
			if r, err := e.m.Unpublish(target); err != nil || r.Delta != -1 {
				t.Fatalf("trial %d: Unpublish after the race = %+v, %v", i, r, err)
			}
		}
		if got := tc.MountsBelow(t, e.pods); len(got) != 0 {
			t.Fatalf("trial %d: left %v", i, got)
		}
	}
	e.assertCount(t)
	t.Logf("%d trials: %d mounts unpublished during the swap, %d refused a symbolic link", trials, unmounted, refused)
}

// TestRootPublishParentSwapRace (finding 1): publish under the same race
// mounts only inside the pods directory and creates nothing outside.
func TestRootPublishParentSwapRace(t *testing.T) {
	e := newEnv(t, "vol")
	target := tc.Target(e.kd, "vol")
	swapped, decoys := decoyTree(t, target)
	before := snapshot(t, decoys[0])
	published := 0
	for i := 0; i < trials; i++ {
		d := swapped[i%len(swapped)]
		s := swap(d, d+".link")
		r, err := e.m.Publish("agent", target)
		s.halt()
		switch {
		case err == nil:
			published++
		case errors.Is(err, mount.ErrSymlink), errors.Is(err, mount.ErrNoParent):
		default:
			t.Fatalf("trial %d: Publish = %+v, %v", i, r, err)
		}
		if after := snapshot(t, decoys[0]); after != before {
			t.Fatalf("trial %d: the decoy tree outside the pods directory changed:\nbefore %s\nafter %s", i, before, after)
		}
		e.assertCount(t)
		if _, err := e.m.Unpublish(target); err != nil {
			t.Fatalf("trial %d: Unpublish = %v", i, err)
		}
		if got := tc.MountsBelow(t, e.pods); len(got) != 0 {
			t.Fatalf("trial %d: left %v", i, got)
		}
	}
	if published == 0 {
		t.Fatal("no publish succeeded: the race was not exercised")
	}
	t.Logf("%d trials, %d published during the swap", trials, published)
}

// TestRootLeavesWhatIsNotOurs (finding 3): whatever the driver did not make
// is left untouched, with a typed error naming it. The old code unmounted a
// tmpfs and deleted a regular file or FIFO at the target.
func TestRootLeavesWhatIsNotOurs(t *testing.T) {
	cases := []struct {
		name  string
		make  func(t *testing.T, e *env, target string)
		found string
		// mounts left at the target, and mounts of ours unpublish removes
		// before it stops.
		left, unmounted int
		// publish fails too (false: it finds its own mount on top).
		publishFails bool
	}{
		{"tmpfs", func(t *testing.T, _ *env, target string) {
			mkdir(t, target)
			if err := unix.Mount("tmpfs", target, "tmpfs", 0, ""); err != nil {
				t.Fatal(err)
			}
		}, "tmpfs mount", 1, 0, true},
		{"read-only tmpfs", func(t *testing.T, _ *env, target string) {
			mkdir(t, target)
			if err := unix.Mount("tmpfs", target, "tmpfs", unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
				t.Fatal(err)
			}
		}, "tmpfs mount", 1, 0, true},
		{"bind of another directory", func(t *testing.T, _ *env, target string) {
			mkdir(t, target)
			bindRO(t, tc.TempDir(t, "foreign"), target)
		}, "bind mount of another directory", 1, 0, true},
		{"writable bind of the source", func(t *testing.T, e *env, target string) {
			mkdir(t, target)
			if err := unix.Mount(e.src, target, "", unix.MS_BIND, ""); err != nil {
				t.Fatal(err)
			}
		}, "writable, suid, dev or exec mount of source agent", 1, 0, true},
		{"foreign mount stacked on ours", func(t *testing.T, e *env, target string) {
			if _, err := e.m.Publish("agent", target); err != nil {
				t.Fatal(err)
			}
			if err := unix.Mount("tmpfs", target, "tmpfs", 0, ""); err != nil {
				t.Fatal(err)
			}
		}, "tmpfs mount", 2, 0, true},
		{"ours stacked on a foreign mount", func(t *testing.T, e *env, target string) {
			mkdir(t, target)
			if err := unix.Mount("tmpfs", target, "tmpfs", 0, ""); err != nil {
				t.Fatal(err)
			}
			bindRO(t, e.src, target)
		}, "tmpfs mount", 1, 1, false},
		{"regular file", func(t *testing.T, _ *env, target string) {
			if err := os.WriteFile(target, []byte("x"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, "regular file", 0, 0, true},
		{"fifo", func(t *testing.T, _ *env, target string) {
			if err := unix.Mkfifo(target, 0o644); err != nil {
				t.Fatal(err)
			}
		}, "fifo", 0, 0, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, "vol")
			target := tc.Target(e.kd, "vol")
			c.make(t, e, target)
			e.restart(t) // also what a restarted driver recognises
			e.assertCount(t)
			var no *mount.NotOursError
			if c.publishFails {
				if _, err := e.m.Publish("agent", target); !errors.As(err, &no) || no.Found != c.found {
					t.Fatalf("Publish = %v, want a NotOursError naming %q", err, c.found)
				}
				e.assertCount(t)
			}
			r, err := e.m.Unpublish(target)
			if !errors.As(err, &no) || no.Found != c.found || no.Kind == "" || !errors.Is(err, mount.ErrNotOurs) {
				t.Fatalf("Unpublish = %+v, %v; want a NotOursError naming %q", r, err, c.found)
			}
			if r.Unmounted != c.unmounted {
				t.Fatalf("Unpublish removed %d mounts, want %d", r.Unmounted, c.unmounted)
			}
			if _, err := os.Lstat(target); err != nil {
				t.Fatalf("target removed: %v", err)
			}
			if got := tc.MountsBelow(t, e.pods); len(got) != c.left {
				t.Fatalf("mounts left %v, want %d", got, c.left)
			}
			e.assertCount(t)
		})
	}
}

func mkdir(t *testing.T, p string) {
	t.Helper()
	if err := os.Mkdir(p, 0o750); err != nil {
		t.Fatal(err)
	}
}

// TestRootTargetLayout (finding 3): only the kubelet's layout for CSI
// volumes is a target. The old code published into a kubernetes.io~secret
// volume directory.
func TestRootTargetLayout(t *testing.T) {
	e := newEnv(t, "vol")
	vols := filepath.Join(e.pods, tc.PodUID, "volumes")
	for _, p := range []string{
		filepath.Join(vols, "kubernetes.io~secret", "token", "mount"),
		filepath.Join(vols, "kubernetes.io~csi", "vol", "mount", "deeper"),
		filepath.Join(e.pods, tc.PodUID, "mount"),
		filepath.Join(e.pods, tc.PodUID, "volumes", "kubernetes.io~csi", "mount"),
		filepath.Join(e.kd, "plugins", tc.PodUID, "volumes", "kubernetes.io~csi", "vol", "mount"),
		e.pods + "/" + tc.PodUID + "/volumes/kubernetes.io~csi/vol/./mount",
		e.pods + "/" + tc.PodUID + "/volumes/kubernetes.io~csi//mount",
	} {
		if err := os.MkdirAll(filepath.Dir(filepath.Clean(p)), 0o750); err != nil {
			t.Fatal(err)
		}
		if _, err := e.m.Publish("agent", p); !errors.Is(err, mount.ErrInvalidTarget) {
			t.Errorf("Publish(%s) = %v, want ErrInvalidTarget", p, err)
		}
		if _, err := e.m.Unpublish(p); !errors.Is(err, mount.ErrInvalidTarget) {
			t.Errorf("Unpublish(%s) = %v, want ErrInvalidTarget", p, err)
		}
	}
	if got := tc.MountsBelow(t, e.kd); len(got) != 0 {
		t.Fatalf("mounted %v", got)
	}
	if _, err := os.Lstat(filepath.Join(vols, "kubernetes.io~secret", "token", "mount")); !os.IsNotExist(err) {
		t.Fatalf("created a directory in a secret volume: %v", err)
	}
}

// TestRootLengthLimits (finding 4): whatever publish accepts, unpublish
// undoes; a component or path over the limit is refused by both as an
// invalid target. The old code published a 4,096-byte target that unpublish
// then failed on forever with "file name too long".
func TestRootLengthLimits(t *testing.T) {
	e := newEnv(t)
	longest := filepath.Join(e.pods, strings.Repeat("u", mount.MaxComponent), "volumes", "kubernetes.io~csi",
		strings.Repeat("n", mount.MaxComponent), strings.Repeat("m", mount.MaxComponent))
	mkdirAll(t, filepath.Dir(longest))
	if r, err := e.m.Publish("agent", longest); err != nil || r.Outcome != mount.Mounted {
		t.Fatalf("Publish of the longest target = %+v, %v", r, err)
	}
	e.assertCount(t)
	if r, err := e.m.Unpublish(longest); err != nil || r.Unmounted != 1 {
		t.Fatalf("Unpublish of the longest target = %+v, %v", r, err)
	}
	e.assertCount(t)

	tooLong := filepath.Join(e.pods, tc.PodUID, "volumes", "kubernetes.io~csi", strings.Repeat("n", mount.MaxComponent+1), "mount")
	mkdirAll(t, filepath.Join(e.pods, tc.PodUID, "volumes", "kubernetes.io~csi"))
	deep := filepath.Join(e.pods, tc.PodUID)
	for len(deep) < 4096-210 {
		deep = filepath.Join(deep, strings.Repeat("d", 200))
	}
	mkdirAll(t, deep)
	deep += "/" + strings.Repeat("m", 4096-len(deep)-1)
	for _, p := range []string{tooLong, deep, e.pods + "/" + strings.Repeat("x/", 2100) + "mount"} {
		_, perr := e.m.Publish("agent", p)
		_, uerr := e.m.Unpublish(p)
		for _, err := range []error{perr, uerr} {
			if !errors.Is(err, mount.ErrInvalidTarget) {
				t.Errorf("%d-byte target: %v, want ErrInvalidTarget", len(p), err)
			}
		}
	}
	if _, err := e.m.Publish("agent", tooLong); !errors.Is(err, mount.ErrNameTooLong) {
		t.Errorf("256-byte component: %v, want ErrNameTooLong", err)
	}
	if got := tc.MountsBelow(t, e.kd); len(got) != 0 {
		t.Fatalf("mounted %v", got)
	}
}

func mkdirAll(t *testing.T, p string) {
	t.Helper()
	if err := os.MkdirAll(p, 0o750); err != nil {
		t.Fatal(err)
	}
}

// TestRootSourceSwapRace (finding 5): a source swapped for a symbolic link
// to a decoy during a publish storm (4 workers, each on its own target) never
// gets the decoy published. The old code mounted the decoy in ~50% of 2,000
// publishes.
func TestRootSourceSwapRace(t *testing.T) {
	const workers = 4
	vols := make([]string, workers)
	for w := range vols {
		vols[w] = fmt.Sprint("vol", w)
	}
	e := newEnv(t, vols...)
	decoy := filepath.Join(tc.TempDir(t, "decoy"), "secret")
	mkdir(t, decoy)
	if err := os.WriteFile(filepath.Join(decoy, "shadow"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(decoy, e.src+".link"); err != nil {
		t.Fatal(err)
	}
	s := swap(e.src, e.src+".link")
	var published, changed atomic.Int64
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(target string) {
			defer wg.Done()
			// The kernel's timing makes the link the state most often
			// seen: go on past the trials until enough publishes went
			// through the race.
			for i := 0; i < trials/workers || published.Load() < trials/40 && i < 40*trials/workers; i++ {
				r, err := e.m.Publish("agent", target)
				var se *mount.SourceError
				switch {
				case err == nil:
					published.Add(1)
				case errors.Is(err, mount.ErrSourceChanged) && errors.As(err, &se) && se.Name == "agent":
					changed.Add(1)
					continue
				default:
					errs <- fmt.Errorf("%s: Publish = %+v, %w", target, r, err)
					return
				}
				if _, err := os.Lstat(filepath.Join(target, "shadow")); err == nil {
					errs <- fmt.Errorf("%s: the decoy was published", target)
					return
				}
				if _, err := os.Lstat(filepath.Join(target, "agent.sock")); err != nil {
					errs <- fmt.Errorf("%s: the source is not what was published: %w", target, err)
					return
				}
				if r, err := e.m.Unpublish(target); err != nil || r.Unmounted != 1 {
					errs <- fmt.Errorf("%s: Unpublish = %+v, %w", target, r, err)
					return
				}
			}
		}(tc.Target(e.kd, vols[w]))
	}
	wg.Wait()
	s.halt()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if published.Load() == 0 || changed.Load() == 0 {
		t.Fatalf("published %d, refused %d: the race was not exercised", published.Load(), changed.Load())
	}
	if ents, _ := os.ReadDir(decoy); len(ents) != 1 {
		t.Fatalf("decoy changed: %v", ents)
	}
	e.assertCount(t)
	t.Logf("%d publishes by %d workers: %d published the source, %d refused as changed",
		published.Load()+changed.Load(), workers, published.Load(), changed.Load())
}

// TestRootSourceResolvedOnce (finding 5): a source is resolved once at start
// (a linked parent such as /var/run), then opened at every publish by that
// canonical path without following links.
func TestRootSourceResolvedOnce(t *testing.T) {
	e := newEnv(t, "vol", "vol2")
	target := tc.Target(e.kd, "vol")
	base := tc.TempDir(t, "run")
	real := filepath.Join(base, "run")
	mkdirAll(t, filepath.Join(real, "agent"))
	if err := os.WriteFile(filepath.Join(real, "agent", "agent.sock"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	varRun := filepath.Join(base, "var-run")
	if err := os.Symlink(real, varRun); err != nil {
		t.Fatal(err)
	}
	e.sources = []mount.Source{{Name: "agent", Path: filepath.Join(varRun, "agent")}}
	e.restart(t)
	// The oracle resolves the source as the driver did at start.
	e.sources = []mount.Source{{Name: "agent", Path: filepath.Join(real, "agent")}}
	if got, want := mount.Canonical(filepath.Join(varRun, "agent")), filepath.Join(real, "agent"); got != want {
		t.Fatalf("Canonical = %s, want %s", got, want)
	}
	if _, err := e.m.Publish("agent", target); err != nil {
		t.Fatal(err)
	}
	// The link now points elsewhere: the source stays the one resolved.
	other := filepath.Join(base, "elsewhere")
	mkdirAll(t, filepath.Join(other, "agent"))
	if err := os.Remove(varRun); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(other, varRun); err != nil {
		t.Fatal(err)
	}
	target2 := tc.Target(e.kd, "vol2")
	if _, err := e.m.Publish("agent", target2); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(target2, "agent.sock")); err != nil {
		t.Fatalf("published another directory than the resolved source: %v", err)
	}
	for _, p := range []string{target, target2} {
		if _, err := e.m.Unpublish(p); err != nil {
			t.Fatal(err)
		}
	}
	src := filepath.Join(real, "agent")
	check := func(what string, want error) {
		t.Helper()
		var se *mount.SourceError
		err := e.m.CheckSource("agent")
		_, perr := e.m.Publish("agent", target2)
		for _, err := range []error{err, perr} {
			if !errors.Is(err, want) || !errors.As(err, &se) || se.Name != "agent" {
				t.Fatalf("%s: %v, want a SourceError wrapping %v", what, err, want)
			}
		}
		if _, err := os.Lstat(target2); !os.IsNotExist(err) {
			t.Fatalf("%s: a failed publish left the target: %v", what, err)
		}
	}
	// A source replaced by a symbolic link.
	if err := os.Rename(src, src+".old"); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(src+".old", src); err != nil {
		t.Fatal(err)
	}
	check("symbolic link", mount.ErrSourceChanged)
	if err := os.Remove(src); err != nil {
		t.Fatal(err)
	}
	check("missing", fs.ErrNotExist)
	if err := os.WriteFile(src, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	check("regular file", mount.ErrSourceNotDirectory)
	if err := os.Remove(src); err != nil {
		t.Fatal(err)
	}
	// Another filesystem mounted over the source path.
	mkdir(t, src)
	if err := unix.Mount("tmpfs", src, "tmpfs", 0, ""); err != nil {
		t.Fatal(err)
	}
	check("another filesystem", mount.ErrSourceChanged)
	if err := unix.Unmount(src, 0); err != nil {
		t.Fatal(err)
	}
	// Recreated by its agent: published again.
	if err := e.m.CheckSource("agent"); err != nil {
		t.Fatalf("recreated source: %v", err)
	}
	if r, err := e.m.Publish("agent", target2); err != nil || r.Outcome != mount.Mounted {
		t.Fatalf("Publish of the recreated source = %+v, %v", r, err)
	}
	e.assertCount(t)
	if r, err := e.m.Unpublish(target2); err != nil || r.Unmounted != 1 || r.Delta != -1 || r.Source != "agent" {
		t.Fatalf("Unpublish = %+v, %v", r, err)
	}
	e.assertCount(t)
}

// TestRootSourceOverlap (finding 5): a source that overlaps the kubelet
// directory once links are resolved is refused at start.
func TestRootSourceOverlap(t *testing.T) {
	tc.RequireRoot(t)
	kd := tc.KubeletDir(t)
	link := filepath.Join(tc.TempDir(t, "l"), "sockets")
	if err := os.Symlink(filepath.Join(kd, "pods"), link); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{link, filepath.Join(link, "x"), filepath.Dir(kd)} {
		sources := []mount.Source{{Name: "agent", Path: p}}
		if err := mount.CheckOverlap(kd, sources); !errors.Is(err, mount.ErrOverlap) {
			t.Errorf("CheckOverlap(%s) = %v, want ErrOverlap", p, err)
		}
		if _, err := mount.NewLinux(mount.Config{PodsDir: filepath.Join(kd, "pods"), Sources: sources}); !errors.Is(err, mount.ErrOverlap) {
			t.Errorf("NewLinux(%s) = %v, want ErrOverlap", p, err)
		}
	}
	if err := mount.CheckOverlap(kd, []mount.Source{{Name: "agent", Path: tc.TempDir(t, "ok")}}); err != nil {
		t.Errorf("CheckOverlap of a separate directory = %v", err)
	}
}

// TestRootPublishedCount (finding 6): the count is exactly the targets whose
// mount the driver would unmount, through restarts, mounts of older
// instances, foreign mounts and a recreated source. The old code went to -1
// after a foreign writable bind was "made read-only" and unpublished, and
// stayed at 1 after a recreated source's mount was unpublished.
func TestRootPublishedCount(t *testing.T) {
	e := newEnv(t, "a", "b", "c", "d")
	a, b, c, d := tc.Target(e.kd, "a"), tc.Target(e.kd, "b"), tc.Target(e.kd, "c"), tc.Target(e.kd, "d")
	// An older instance's mount, before start.
	mkdir(t, a)
	bindRO(t, e.src, a)
	e.restart(t)
	if got := mount.Published(e.m); !reflect.DeepEqual(got, map[string]int{"agent": 1}) {
		t.Fatalf("Published after start = %v", got)
	}
	e.assertCount(t)
	if r, err := e.m.Publish("agent", b); err != nil || r.Delta != 1 {
		t.Fatalf("Publish = %+v, %v", r, err)
	}
	if r, err := e.m.Publish("other", c); err != nil || r.Delta != 1 || r.Source != "other" {
		t.Fatalf("Publish = %+v, %v", r, err)
	}
	e.assertCount(t)
	// A foreign writable bind of the source: never made ours, never counted.
	mkdir(t, d)
	if err := unix.Mount(e.src, d, "", unix.MS_BIND, ""); err != nil {
		t.Fatal(err)
	}
	if r, err := e.m.Publish("agent", d); !errors.Is(err, mount.ErrNotOurs) || r.Delta != 0 {
		t.Fatalf("Publish over a foreign bind = %+v, %v", r, err)
	}
	if r, err := e.m.Unpublish(d); !errors.Is(err, mount.ErrNotOurs) || r.Delta != 0 {
		t.Fatalf("Unpublish of a foreign bind = %+v, %v", r, err)
	}
	e.assertCount(t)
	// The agent removes and recreates its directory.
	if err := os.RemoveAll(e.src); err != nil {
		t.Fatal(err)
	}
	mkdir(t, e.src)
	e.assertCount(t)
	if r, err := e.m.Unpublish(b); err != nil || r.Delta != -1 || r.Unmounted != 1 {
		t.Fatalf("Unpublish of a removed source's mount = %+v, %v", r, err)
	}
	e.assertCount(t)
	// Restart: the older mount of the removed directory is still ours.
	e.restart(t)
	if got := mount.Published(e.m); !reflect.DeepEqual(got, map[string]int{"agent": 1, "other": 1}) {
		t.Fatalf("Published after restart = %v", got)
	}
	e.assertCount(t)
	for _, p := range []string{a, c} {
		if r, err := e.m.Unpublish(p); err != nil || r.Delta != -1 || r.Unmounted != 1 {
			t.Fatalf("Unpublish(%s) = %+v, %v", p, r, err)
		}
		e.assertCount(t)
	}
	if got := mount.Published(e.m); len(got) != 0 {
		t.Fatalf("Published at the end = %v", got)
	}
}
