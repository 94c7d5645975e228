package mounttest

import (
	"fmt"
	"io/fs"
	"strings"
	"sync"

	"github.com/meshcsi/meshcsi/services/csi-driver/internal/mount"
)

// Fake is an in-memory mount.Mounter for unit tests of other packages. Targets
// whose path contains a component listed in Symlinks fail with mount.ErrSymlink.
type Fake struct {
	mu sync.Mutex
	// Sources maps a source name to the mount.ID of its directory; a name not
	// listed does not exist on the host.
	Sources map[string]mount.ID
	// Symlinks lists path components that are symbolic links.
	Symlinks map[string]bool
	// Mounts maps a target to its stack of mounted IDs, bottom first.
	Mounts map[string][]mount.ID
	// Dirs holds the targets that exist as directories.
	Dirs map[string]bool
	// Foreign maps a target to what is there that the driver did not make
	// (e.g. "tmpfs mount"); Publish and Unpublish fail with a
	// *mount.NotOursError naming it.
	Foreign map[string]string
	// PublishErr, when set, fails Publish.
	PublishErr error
	// Publishes counts Publish calls that mounted.
	Publishes int
	published map[string]string
}

var _ mount.Mounter = (*Fake)(nil)

// NewFake returns an empty Fake.
func NewFake() *Fake {
	return &Fake{
		Sources:   map[string]mount.ID{},
		Symlinks:  map[string]bool{},
		Mounts:    map[string][]mount.ID{},
		Dirs:      map[string]bool{},
		Foreign:   map[string]string{},
		published: map[string]string{},
	}
}

func (f *Fake) check(target string) error {
	for _, c := range strings.Split(target, "/") {
		if f.Symlinks[c] {
			return fmt.Errorf("%s: %w", target, mount.ErrSymlink)
		}
	}
	if found, ok := f.Foreign[target]; ok {
		return &mount.NotOursError{Target: target, Found: found, Kind: mount.KindOther}
	}
	return nil
}

func (f *Fake) nameOf(id mount.ID) string {
	for name, sid := range f.Sources {
		if sid == id {
			return name
		}
	}
	return ""
}

func (f *Fake) count(target, name string) int {
	_, had := f.published[target]
	switch {
	case name == "" && had:
		delete(f.published, target)
		return -1
	case name != "" && !had:
		f.published[target] = name
		return 1
	}
	return 0
}

// CheckSource implements mount.Mounter.
func (f *Fake) CheckSource(name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.Sources[name]; !ok {
		return &mount.SourceError{Name: name, Err: &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}}
	}
	return nil
}

// Publish implements mount.Mounter.
func (f *Fake) Publish(name, target string) (mount.Result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	id, ok := f.Sources[name]
	if !ok {
		return mount.Result{}, &mount.SourceError{Name: name, Err: &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}}
	}
	if err := f.check(target); err != nil {
		return mount.Result{}, err
	}
	if stack := f.Mounts[target]; len(stack) > 0 {
		if top := stack[len(stack)-1]; top != id {
			return mount.Result{}, fmt.Errorf("%s: %w", target, mount.ErrOtherSource)
		}
		return mount.Result{Outcome: mount.AlreadyMounted, Source: name, Delta: f.count(target, name)}, nil
	}
	if f.PublishErr != nil {
		return mount.Result{}, f.PublishErr
	}
	f.Dirs[target] = true
	f.Mounts[target] = append(f.Mounts[target], id)
	f.Publishes++
	return mount.Result{Outcome: mount.Mounted, Source: name, Delta: f.count(target, name)}, nil
}

// Unpublish implements mount.Mounter.
func (f *Fake) Unpublish(target string) (mount.Result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check(target); err != nil {
		return mount.Result{Outcome: mount.NothingMounted}, err
	}
	stack := f.Mounts[target]
	res := mount.Result{Outcome: mount.NothingMounted, Unmounted: len(stack), Source: f.published[target]}
	if len(stack) > 0 {
		res.Outcome = mount.Unmounted
		if res.Source == "" {
			res.Source = f.nameOf(stack[len(stack)-1])
		}
	}
	delete(f.Mounts, target)
	delete(f.Dirs, target)
	res.Delta = f.count(target, "")
	return res, nil
}

// Recover implements mount.Mounter: it counts the targets whose top mount is a
// source's.
func (f *Fake) Recover() (map[string]int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]int{}
	for target, stack := range f.Mounts {
		if len(stack) == 0 {
			continue
		}
		if name := f.nameOf(stack[len(stack)-1]); name != "" {
			f.count(target, name)
			out[name]++
		}
	}
	return out, nil
}
