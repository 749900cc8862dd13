//go:build !linux

package lambdatest

import "os/exec"

// setProcAttrs does nothing outside Linux, which has no parent-death signal.
// A bootstrap whose test binary died exits by itself: aws-lambda-go exits
// when the Runtime API stops answering.
func setProcAttrs(cmd *exec.Cmd) {}
