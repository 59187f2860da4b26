//go:build unix && !linux

package testserver

import "syscall"

// procAttr returns how to start a server process: as u when it is not nil,
// in a process group of its own. dieWithParent has no equivalent here.
func procAttr(u *osUser, dieWithParent bool) *syscall.SysProcAttr {
	a := &syscall.SysProcAttr{Setpgid: true}
	if u != nil {
		a.Credential = &syscall.Credential{Uid: uint32(u.uid), Gid: uint32(u.gid)}
	}
	return a
}
