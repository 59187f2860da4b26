//go:build !linux

package main

import "syscall"

// childProcAttr is nil off Linux: a child shares benchflash's process group
// (a Ctrl-C reaches it too) and outlives a benchflash that dies without
// stopping it.
func childProcAttr() *syscall.SysProcAttr { return nil }
