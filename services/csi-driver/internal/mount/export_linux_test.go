//go:build linux

package mount

// ForceLegacy makes m use the mount(2) fallback, as on a kernel without
// mount_setattr.
func ForceLegacy(m *Linux) { m.legacy.Store(true) }

// Published returns m's published count per source name.
func Published(m *Linux) map[string]int { return m.published() }

// Canonical is canonical, for tests.
func Canonical(p string) string { return canonical(p) }
