// Package mounttest holds test helpers around the real mount table: listing
// and removing the mounts below a directory, and an independent count of the
// mounts the driver would unmount, to hold the published-volumes gauge
// against. It is imported only by tests.
package mounttest
