// Package e2e is being built; see the issue tracker.
package e2e
