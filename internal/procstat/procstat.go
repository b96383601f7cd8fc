// Package procstat reads what a process holds of the machine: its resident
// memory and its open file descriptors, and finds its child processes; the
// soak and the benchmarks report them to show that long runs stay bounded.
package procstat

// Stat is what a process holds at one moment.
type Stat struct {
	// RSS is its resident memory, in bytes.
	RSS int64
	// FDs is how many file descriptors it has open.
	FDs int
}

// Proc is a process: its id and its command's name.
type Proc struct {
	Pid  int
	Name string
}
