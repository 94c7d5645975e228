// Package driver is being built; see the issue tracker.
package driver
