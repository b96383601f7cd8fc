package main

import (
	"context"
	"syscall"
)

// endWithParent has the kernel send SIGTERM when the parent (make) dies,
// which the signal context already ends on.
func endWithParent(ctx context.Context) context.Context {
	syscall.RawSyscall(syscall.SYS_PRCTL, syscall.PR_SET_PDEATHSIG, uintptr(syscall.SIGTERM), 0)
	return ctx
}
