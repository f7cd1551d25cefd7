//go:build !windows

package main

import (
	"fmt"
	"os"
	"syscall"
)

// requireAdmin fails with a plain sentence instead of a stack of permission
// errors from the service manager.
func requireAdmin(action string) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("%s needs root: run 'sudo integrasjonspunkt %s'", action, action)
	}
	return nil
}

// giveToDataOwner hands paths root made under the data dir (the check's
// report) to the data dir's owner, the service user, so the daemon can read
// them. Nothing to do when not root.
func giveToDataOwner(data string, paths ...string) {
	if os.Geteuid() != 0 {
		return
	}
	fi, err := os.Stat(data)
	if err != nil {
		return
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || st.Uid == 0 {
		return
	}
	for _, p := range paths {
		_ = os.Lchown(p, int(st.Uid), int(st.Gid))
	}
}
