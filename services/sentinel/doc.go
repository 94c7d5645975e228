// Package sentinel is being built; see the issue tracker.
package sentinel
