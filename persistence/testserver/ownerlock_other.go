//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package testserver

import "os"

// lockOwner creates the file at path; without flock it locks nothing.
func lockOwner(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
}

// ownerGone reports false: without flock nothing is ever reaped.
func ownerGone(path string) (*os.File, bool) { return nil, false }
