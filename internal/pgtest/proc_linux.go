package pgtest

import (
	"errors"
	"os"
	"os/user"
	"strconv"
	"syscall"
)

type ids struct{ uid, gid int }

// runAs is the user the server runs as: the current one unless root, then
// postgres (Debian's package makes it) or nobody. PostgreSQL refuses root.
func runAs() (*ids, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		return &ids{uid, gid}, nil
	}
	return nil, errors.New("running as root and neither a postgres nor a nobody user exists to run PostgreSQL as")
}

// procAttr runs a server process as who, and kills it when the test binary
// dies without stopping it (a panic, a timeout), so no server outlives its
// test.
func procAttr(who *ids) *syscall.SysProcAttr {
	a := &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if who != nil {
		a.Credential = &syscall.Credential{Uid: uint32(who.uid), Gid: uint32(who.gid)}
	}
	return a
}
