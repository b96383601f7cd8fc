package api

import "sync"

// inFlight counts each project's requests in progress, to refuse those
// past a limit, so that one project cannot hold all of what Cube serves at
// once. Only projects with requests in progress have an entry: the map is
// as large as the requests being served, never as the projects ever seen.
type inFlight struct {
	limit int // 0: none
	mu    sync.Mutex
	n     map[int64]int
}

func newInFlight(limit int) *inFlight {
	return &inFlight{limit: max(limit, 0), n: map[int64]int{}}
}

// acquire counts one more request of project, unless it already has as
// many as the limit; release must follow each acquire that succeeded.
func (f *inFlight) acquire(project int64) bool {
	if f.limit == 0 {
		return true
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.n[project] >= f.limit {
		return false
	}
	f.n[project]++
	return true
}

// release counts one request of project less.
func (f *inFlight) release(project int64) {
	if f.limit == 0 {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.n[project] <= 1 {
		delete(f.n, project)
		return
	}
	f.n[project]--
}

// projects is how many projects have requests in progress.
func (f *inFlight) projects() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.n)
}
