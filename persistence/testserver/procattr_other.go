//go:build !unix

package testserver

import "syscall"

// procAttr returns nil: other systems start servers as the current user.
func procAttr(u *osUser, dieWithParent bool) *syscall.SysProcAttr { return nil }
