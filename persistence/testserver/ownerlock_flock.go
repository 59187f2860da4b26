//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package testserver

import (
	"os"
	"syscall"
)

// lockOwner creates the file at path and locks it (flock) for as long as
// the returned file stays open, that is, until our process ends or closes
// it. It first creates and locks a file beside path, then renames it to
// path, so that nobody finds path unlocked.
func lockOwner(path string) (*os.File, error) {
	tmp := path + ".new"
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		return nil, err
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = f.Close()
		return nil, err
	}
	return f, nil
}

// ownerGone reports whether the process that locked the file at path with
// lockOwner is gone: the kernel dropped its lock. Unlike a pid, this works
// across PID namespaces and is not fooled by zombies or reused pids. On
// true, the returned file holds the lock; close it when done.
func ownerGone(path string) (*os.File, bool) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, false
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close() // EWOULDBLOCK: the owner lives
		return nil, false
	}
	return f, true
}
