//go:build !unix || solaris || illumos || aix

package lambdatest

// holdLock does nothing where syscall.Flock is unavailable.
func holdLock(path string) error { return nil }

// abandoned reports false where syscall.Flock is unavailable, so the build
// directories of earlier test runs are left to the system's temporary-file
// cleanup.
func abandoned(path string) bool { return false }
