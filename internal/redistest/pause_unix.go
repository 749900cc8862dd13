//go:build unix

package redistest

import "syscall"

// pauseSignals are the signals that stop and continue a process.
var pauseSignals = struct{ stop, cont syscall.Signal }{syscall.SIGSTOP, syscall.SIGCONT}

// canPause reports whether Server.Pause works on this system.
const canPause = true
