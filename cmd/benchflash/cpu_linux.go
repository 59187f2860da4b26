package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// userHZ is the unit of the CPU times in /proc/<pid>/stat (USER_HZ, 100 on
// every Linux architecture Go runs on).
const userHZ = 100

// procStat returns the fields of /proc/<pid>/stat after the command name
// (field 3, the state, is index 0).
func procStat(pid int) ([]string, error) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return nil, err
	}
	// The command name is in parentheses and may hold spaces.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return nil, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	return strings.Fields(string(b[i+1:])), nil
}

// ticks sums fields (1-based numbers of proc(5)) of a stat line.
func ticks(f []string, fields ...int) (time.Duration, error) {
	var sum int64
	for _, n := range fields {
		i := n - 3
		if i < 0 || i >= len(f) {
			return 0, fmt.Errorf("stat has no field %d", n)
		}
		v, err := strconv.ParseInt(f[i], 10, 64)
		if err != nil {
			return 0, err
		}
		sum += v
	}
	return time.Duration(sum) * time.Second / userHZ, nil
}

// processCPU is the CPU time (user + system) pid has used so far.
func processCPU(pid int) (time.Duration, error) {
	f, err := procStat(pid)
	if err != nil {
		return 0, err
	}
	return ticks(f, 14, 15)
}

// treeCPU is the CPU time a server process and its children have used so
// far: root's own, that of its children it has reaped, and that of its
// live children (PostgreSQL's backends are children of the postmaster).
func treeCPU(root int) (time.Duration, error) {
	f, err := procStat(root)
	if err != nil {
		return 0, err
	}
	total, err := ticks(f, 14, 15, 16, 17)
	if err != nil {
		return 0, err
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cf, err := procStat(pid)
		if err != nil || len(cf) < 2 || cf[1] != strconv.Itoa(root) { // field 4 is the parent
			continue
		}
		if t, err := ticks(cf, 14, 15); err == nil {
			total += t
		}
	}
	return total, nil
}

// selfCPU is the CPU time this process has used so far (not its children).
func selfCPU() (time.Duration, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, err
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}
