//go:build unix && !solaris && !illumos && !aix

package lambdatest

import (
	"errors"
	"os"
	"syscall"
)

// heldLock is the open lock file of this test binary's build directory. It
// is never closed: the kernel releases the lock when the process exits, and
// keeping the reference stops the file's finalizer from releasing it sooner.
var heldLock *os.File

// holdLock creates the lock file at path and locks it for the rest of the
// process's life.
func holdLock(path string) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		return err
	}
	heldLock = f
	return nil
}

// abandoned reports whether the lock file at path exists and no process
// holds its lock, meaning the test binary that created it has exited.
func abandoned(path string) bool {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		// A directory without a lock file is one whose owner failed
		// before locking it (or is about to lock it; staleAfter covers that).
		return errors.Is(err, os.ErrNotExist)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		return false
	}
	// Closing f releases the lock we just took.
	return true
}
