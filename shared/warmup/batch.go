package warmup

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
)

// Batch is one message of the warm-up queue: projects that one deployment
// serves, warmed by one invocation of the worker.
type Batch struct {
	// Run names the planning run that sent it (its start, to the minute,
	// in UTC), for the logs.
	Run string `json:"run"`
	// Deployment is the Cube deployment the planner placed the projects on.
	Deployment string `json:"deployment"`
	// Projects to warm.
	Projects []int64 `json:"projects"`
}

// MaxBatchProjects bounds a batch: the worker warms it within one
// invocation (15 queries a project), and a larger batch is retried whole.
const MaxBatchProjects = 100

// Check reports what is wrong with a batch read from the queue.
func (b Batch) Check() error {
	if len(b.Projects) == 0 {
		return errors.New("the batch has no projects")
	}
	if len(b.Projects) > MaxBatchProjects {
		return fmt.Errorf("the batch has %d projects, more than %d", len(b.Projects), MaxBatchProjects)
	}
	for _, p := range b.Projects {
		if p <= 0 {
			return fmt.Errorf("project %d is not a project ID", p)
		}
	}
	return nil
}

// ParseBatch reads a queue message's body.
func ParseBatch(body string) (Batch, error) {
	var b Batch
	if err := json.Unmarshal([]byte(body), &b); err != nil {
		return Batch{}, fmt.Errorf("the message is not a warm-up batch: %w", err)
	}
	return b, b.Check()
}

// Group is a batch's FIFO message group: each deployment's batches are
// spread over slots groups, and the queue hands the worker one message of
// a group at a time, so that at most slots batches of one deployment are
// warmed at once, however many deployments there are.
func (b Batch) Group(slot int) string {
	return b.Deployment + "." + strconv.Itoa(slot)
}

// Split places each project (duplicates and non-IDs dropped) with place and
// cuts each deployment's projects, in ascending order, into batches of at
// most size. Deployments come in name order, so that the same projects
// give the same batches.
func Split(run string, projects []int64, place func(int64) string, size int) []Batch {
	size = min(max(size, 1), MaxBatchProjects)
	byDeployment := map[string][]int64{}
	seen := map[int64]bool{}
	for _, p := range projects {
		if p <= 0 || seen[p] {
			continue
		}
		seen[p] = true
		d := place(p)
		byDeployment[d] = append(byDeployment[d], p)
	}
	var out []Batch
	for _, d := range slices.Sorted(maps.Keys(byDeployment)) {
		ps := byDeployment[d]
		slices.Sort(ps)
		for chunk := range slices.Chunk(ps, size) {
			out = append(out, Batch{Run: run, Deployment: d, Projects: chunk})
		}
	}
	return out
}
