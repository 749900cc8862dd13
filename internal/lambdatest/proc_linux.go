//go:build linux

package lambdatest

import (
	"os/exec"
	"syscall"
)

// setProcAttrs makes the kernel kill a bootstrap process with SIGKILL when
// the test binary dies, so that a crashed test run leaves no process behind.
func setProcAttrs(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
