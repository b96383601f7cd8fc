//go:build !linux

package child

import "context"

// Serves is a WaitReady probe: addr accepts connections. (On Linux it also
// checks that the listener is this process's; elsewhere a dial is all there
// is to check.)
func (p *Process) Serves(addr string) func(context.Context) bool {
	return Listening(addr)
}
