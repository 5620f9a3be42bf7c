package coturn

import "syscall"

// sysProcAttr makes the kernel kill coturn if the test process dies first.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
