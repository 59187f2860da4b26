package main

import "syscall"

// childProcAttr puts a child (a bookd node, loadgen) in a process group of
// its own, so that a Ctrl-C in the terminal reaches benchflash alone, which
// then ends the run in order: loadgen is interrupted and checks against
// servers still up, then the servers stop. The kernel kills the child when
// benchflash dies without stopping it, SIGKILL included (Pdeathsig fires when
// the thread that started the child ends; Go's threads live as long as the
// process unless a goroutine locked to one exits, which benchflash's do not).
func childProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
