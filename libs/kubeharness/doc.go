// Package kubeharness is being built; see the issue tracker.
package kubeharness
