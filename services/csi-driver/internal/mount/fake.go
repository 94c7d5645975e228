package mount

import (
	"fmt"
	"io/fs"
	"strings"
	"sync"
)

// Fake is an in-memory Mounter for unit tests. Targets whose path contains a
// component listed in Symlinks fail with ErrSymlink.
type Fake struct {
	mu sync.Mutex
	// Sources maps a source directory to its ID; a missing one does not exist.
	Sources map[string]ID
	// Symlinks lists path components that are symbolic links.
	Symlinks map[string]bool
	// Mounts maps a target to its stack of mounted IDs, bottom first.
	Mounts map[string][]ID
	// Dirs holds the targets that exist as directories.
	Dirs map[string]bool
	// Insecure marks targets whose top mount is writable.
	Insecure map[string]bool
	// PublishErr, when set, fails Publish.
	PublishErr error
	// Publishes counts Publish calls that mounted.
	Publishes int
}

// NewFake returns an empty Fake.
func NewFake() *Fake {
	return &Fake{
		Sources:  map[string]ID{},
		Symlinks: map[string]bool{},
		Mounts:   map[string][]ID{},
		Dirs:     map[string]bool{},
		Insecure: map[string]bool{},
	}
}

func (f *Fake) check(target string) error {
	for _, c := range strings.Split(target, "/") {
		if f.Symlinks[c] {
			return fmt.Errorf("%s: %w", target, ErrSymlink)
		}
	}
	return nil
}

// SourceID implements Mounter.
func (f *Fake) SourceID(source string) (ID, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	id, ok := f.Sources[source]
	if !ok {
		return ID{}, &fs.PathError{Op: "stat", Path: source, Err: fs.ErrNotExist}
	}
	return id, nil
}

// State implements Mounter.
func (f *Fake) State(target string) (State, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check(target); err != nil {
		return State{}, err
	}
	stack := f.Mounts[target]
	if len(stack) == 0 {
		return State{Exists: f.Dirs[target]}, nil
	}
	return State{Exists: true, Mounted: true, Root: stack[len(stack)-1], Secure: !f.Insecure[target]}, nil
}

// Publish implements Mounter.
func (f *Fake) Publish(source string, want ID, target string) (Outcome, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check(target); err != nil {
		return 0, err
	}
	if stack := f.Mounts[target]; len(stack) > 0 {
		switch {
		case stack[len(stack)-1] != want:
			return 0, fmt.Errorf("%s: %w", target, ErrOtherSource)
		case f.Insecure[target]:
			delete(f.Insecure, target)
			return MadeSecure, nil
		default:
			return AlreadyMounted, nil
		}
	}
	if f.PublishErr != nil {
		return 0, f.PublishErr
	}
	id, ok := f.Sources[source]
	if !ok {
		return 0, &fs.PathError{Op: "open_tree", Path: source, Err: fs.ErrNotExist}
	}
	f.Dirs[target] = true
	f.Mounts[target] = append(f.Mounts[target], id)
	f.Publishes++
	return Mounted, nil
}

// Unpublish implements Mounter.
func (f *Fake) Unpublish(target string) (int, ID, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check(target); err != nil {
		return 0, ID{}, err
	}
	stack := f.Mounts[target]
	var top ID
	if len(stack) > 0 {
		top = stack[len(stack)-1]
	}
	delete(f.Mounts, target)
	delete(f.Dirs, target)
	return len(stack), top, nil
}
