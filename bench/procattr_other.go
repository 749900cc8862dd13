//go:build !linux

package main

import "syscall"

// childAttr is nil outside Linux: children are stopped by the suite's
// clean-up only.
func childAttr() *syscall.SysProcAttr { return nil }
