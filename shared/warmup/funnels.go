package warmup

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"time"

	"productanalytics/shared/cube"
)

// FunnelResult is what a project's meta said of its funnels.
type FunnelResult struct {
	Project int64 `json:"project"`
	// Funnels are the names of the project's funnel cubes.
	Funnels []string `json:"funnels,omitempty"`
	// Error says why the meta could not be read: the project's funnels
	// then go unwarmed, its dashboards not.
	Error string `json:"error,omitempty"`
	// Retry says the failure may pass, as Result.Retry.
	Retry bool `json:"retry,omitempty"`
}

// sharedCubes are the data model's cubes every project has; any other cube
// with a funnel's members is one of the project's funnels.
var sharedCubes = map[string]bool{"TrackedEvents": true, "Sessions": true, "ReturningUsers": true}

// funnelName is what a funnel's cube name may be: GitLab parameterizes a
// funnel's file name into one. Anything else in meta is not warmed, so
// that no string of meta reaches a query unchecked.
var funnelName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,99}$`)

// funnels asks the project's meta for its funnels and returns their
// queries: count by step over from-to, as the dashboards page sends them.
func (r *Runner) funnels(ctx context.Context, project int64, from, to string, timeout time.Duration) ([]NamedQuery, FunnelResult) {
	res := FunnelResult{Project: project}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	out, err := r.cube.Do(ctx, cube.Request{Endpoint: cube.Meta, ProjectID: project, RequestID: "warmup-" + strconv.FormatInt(project, 10) + "-meta"})
	if err != nil {
		res.Error, res.Retry = err.Error(), retryable(err)
		return nil, res
	}
	names, err := FunnelCubes(out.Body)
	if err != nil {
		res.Error = err.Error()
		return nil, res
	}
	res.Funnels = names
	qs := make([]NamedQuery, 0, len(names))
	for _, n := range names {
		qs = append(qs, FunnelQuery(n, from, to))
	}
	return qs, res
}

// FunnelCubes returns the names of the funnel cubes a meta answer lists:
// cubes other than the shared ones with the members <name>.count,
// <name>.step and <name>.date.
func FunnelCubes(meta []byte) ([]string, error) {
	var m struct {
		Cubes []struct {
			Name     string `json:"name"`
			Measures []struct {
				Name string `json:"name"`
			} `json:"measures"`
			Dimensions []struct {
				Name string `json:"name"`
			} `json:"dimensions"`
		} `json:"cubes"`
	}
	if err := json.Unmarshal(meta, &m); err != nil {
		return nil, fmt.Errorf("reading Cube's meta: %w", err)
	}
	var names []string
	for _, c := range m.Cubes {
		if sharedCubes[c.Name] || !funnelName.MatchString(c.Name) {
			continue
		}
		has := map[string]bool{}
		for _, x := range c.Measures {
			has[x.Name] = true
		}
		for _, x := range c.Dimensions {
			has[x.Name] = true
		}
		if has[c.Name+".count"] && has[c.Name+".step"] && has[c.Name+".date"] {
			names = append(names, c.Name)
		}
	}
	return names, nil
}

// FunnelQuery is the query the dashboards page sends for funnel name over
// the days from to to (YYYY-MM-DD): its count by step.
func FunnelQuery(name, from, to string) NamedQuery {
	q, err := json.Marshal(map[string]any{
		"measures":   []string{name + ".count"},
		"dimensions": []string{name + ".step"},
		"filters":    []map[string]any{{"member": name + ".date", "operator": "inDateRange", "values": []string{from, to}}},
	})
	if err != nil {
		panic(err) // strings only: always marshals
	}
	return NamedQuery{Name: "funnel-" + name, Query: q}
}

// dateRange is the date range of the first query filtered on one, so that
// the funnels are warmed over the very range the dashboards are; the
// dashboards' seven days up to today when none is.
func dateRange(qs []NamedQuery) (from, to string) {
	for _, q := range qs {
		var v struct {
			Filters []struct {
				Operator string   `json:"operator"`
				Values   []string `json:"values"`
			} `json:"filters"`
		}
		if json.Unmarshal(q.Query, &v) != nil {
			continue
		}
		for _, f := range v.Filters {
			if f.Operator == "inDateRange" && len(f.Values) == 2 {
				return f.Values[0], f.Values[1]
			}
		}
	}
	now := time.Now().UTC()
	return now.AddDate(0, 0, -7).Format(time.DateOnly), now.Format(time.DateOnly)
}

// retryable reports whether a failed call may succeed later: Cube or its
// store unreachable, busy, failing or slow, or its key unreadable. A
// project without data or a query Cube refuses fails the same way again.
func retryable(err error) bool {
	for _, kind := range []error{cube.ErrUnreachable, cube.ErrTimeout, cube.ErrFailed, cube.ErrStore, cube.ErrBusy, cube.ErrKeyUnavailable, cube.ErrKeyRefused} {
		if errors.Is(err, kind) {
			return true
		}
	}
	return false
}
