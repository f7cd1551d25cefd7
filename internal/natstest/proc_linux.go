package natstest

import "syscall"

// procAttr kills a node when the test binary dies without stopping it.
func procAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} }
