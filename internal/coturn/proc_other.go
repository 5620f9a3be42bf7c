//go:build !linux

package coturn

import (
	"errors"
	"syscall"
	"time"
)

func sysProcAttr() *syscall.SysProcAttr { return nil }

func cpuTime(int) (time.Duration, error) {
	return 0, errors.New("coturn: CPU time is read from /proc, on Linux only")
}
