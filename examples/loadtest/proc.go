package main

import (
	"bufio"
	"bytes"
	"os"
	"runtime"
	"strconv"
	"syscall"
	"time"
)

// procSample is the process's resource use at one moment.
type procSample struct {
	at         time.Time
	cpu        time.Duration // user + system CPU time since the process started
	rss, hwm   int64         // VmRSS and VmHWM (peak RSS) in bytes
	goroutines int
}

// sampleProc reads getrusage(RUSAGE_SELF) for CPU and /proc/self/status for
// the resident set (current and peak).
func sampleProc() procSample {
	s := procSample{at: time.Now(), goroutines: runtime.NumGoroutine()}
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		s.cpu = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	s.rss, s.hwm = readStatus()
	return s
}

// readStatus returns VmRSS and VmHWM from /proc/self/status, in bytes.
func readStatus() (rss, hwm int64) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, 0
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Bytes()
		switch {
		case bytes.HasPrefix(line, []byte("VmRSS:")):
			rss = kib(line[len("VmRSS:"):])
		case bytes.HasPrefix(line, []byte("VmHWM:")):
			hwm = kib(line[len("VmHWM:"):])
		}
	}
	return rss, hwm
}

// kib parses "   1234 kB" into bytes.
func kib(b []byte) int64 {
	f := bytes.Fields(b)
	if len(f) == 0 {
		return 0
	}
	n, _ := strconv.ParseInt(string(f[0]), 10, 64)
	return n * 1024
}

// cpuCores is the average number of cores used between two samples.
func cpuCores(a, b procSample) float64 {
	wall := b.at.Sub(a.at)
	if wall <= 0 {
		return 0
	}
	return float64(b.cpu-a.cpu) / float64(wall)
}
