//go:build !linux

package pgtest

import (
	"errors"
	"syscall"
)

type ids struct{ uid, gid int }

func runAs() (*ids, error) {
	return nil, errors.New("the private PostgreSQL server of the tests runs on Linux only")
}

func procAttr(*ids) *syscall.SysProcAttr { return nil }
