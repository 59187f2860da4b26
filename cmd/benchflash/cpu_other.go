//go:build !linux

package main

import (
	"errors"
	"time"
)

var errNoProc = errors.New("CPU times are read from /proc, which this system does not have")

func processCPU(int) (time.Duration, error) { return 0, errNoProc }
func treeCPU(int) (time.Duration, error)    { return 0, errNoProc }
func selfCPU() (time.Duration, error)       { return 0, errNoProc }
