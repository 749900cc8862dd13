//go:build linux

package redistest

import (
	"os/exec"
	"syscall"
)

// setProcAttrs makes the kernel kill the server with SIGKILL when the test
// binary dies, so that a crashed or killed test run leaves no server behind.
func setProcAttrs(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
