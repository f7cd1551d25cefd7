//go:build windows

package main

import (
	"fmt"

	"golang.org/x/sys/windows"
)

// requireAdmin fails with a plain sentence instead of a stack of access-denied
// errors from the service control manager.
func requireAdmin(action string) error {
	if !windows.GetCurrentProcessToken().IsElevated() {
		return fmt.Errorf("%s needs an administrator: run it from a command prompt opened with 'Run as administrator'", action)
	}
	return nil
}

// giveToDataOwner has nothing to do on Windows: the data dir's ACL is
// inherited by what is made in it.
func giveToDataOwner(data string, paths ...string) {}
