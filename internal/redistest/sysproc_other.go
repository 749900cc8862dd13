//go:build !linux

package redistest

import "os/exec"

// setProcAttrs does nothing outside Linux, which has no parent-death signal;
// servers are stopped by Main and test cleanups only.
func setProcAttrs(cmd *exec.Cmd) {}
