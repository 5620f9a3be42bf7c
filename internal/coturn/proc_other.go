//go:build !linux

package coturn

import "syscall"

func sysProcAttr() *syscall.SysProcAttr { return nil }
