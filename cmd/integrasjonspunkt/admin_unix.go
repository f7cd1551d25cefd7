//go:build !windows

package main

import (
	"fmt"
	"os"
)

// requireAdmin fails with a plain sentence instead of a stack of permission
// errors from the service manager.
func requireAdmin(action string) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("%s needs root: run 'sudo integrasjonspunkt %s'", action, action)
	}
	return nil
}
