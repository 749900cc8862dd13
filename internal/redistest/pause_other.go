//go:build !unix

package redistest

import "syscall"

// pauseSignals are unused where processes cannot be stopped by a signal.
var pauseSignals = struct{ stop, cont syscall.Signal }{}

// canPause reports whether Server.Pause works on this system.
const canPause = false
