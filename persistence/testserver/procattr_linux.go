package testserver

import "syscall"

// procAttr returns how to start a server process: as u when it is not nil,
// in a process group of its own (so that a terminal's Ctrl-C reaches the
// test binary, which stops its servers, rather than the servers), and, with
// dieWithParent, killed by the kernel when the test binary dies (servers
// that stay our child process only: pg_ctl's postmaster is not one).
func procAttr(u *osUser, dieWithParent bool) *syscall.SysProcAttr {
	a := &syscall.SysProcAttr{Setpgid: true}
	if u != nil {
		a.Credential = &syscall.Credential{Uid: uint32(u.uid), Gid: uint32(u.gid)}
	}
	if dieWithParent {
		a.Pdeathsig = syscall.SIGKILL
	}
	return a
}
