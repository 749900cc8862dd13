package main

import "syscall"

// childAttr makes a child process die with the suite, even when the suite is
// killed and cannot clean up.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
