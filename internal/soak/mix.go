package soak

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"time"

	"productanalytics/internal/seed"
	"productanalytics/shared/dashboards"
)

// call is one kind of request of the mix, and the status it must get.
type call struct {
	name   string
	weight int
	// build makes the request; r picks among its variants.
	build  func(base string, r *rand.Rand) (*http.Request, error)
	status int
}

// Token makes a caller token that reads projects.
type Token func(projects ...int64) string

// mix is what a dashboard left open and scripts send, with a share of
// refusals and bad inputs: for projects 1 and 2 the dashboards' queries
// (the last 7, 30 and 90 days), the documentation's example, dry-runs and
// meta; and requests that must be refused before Cube or by it. The set of
// distinct queries is bounded, as a real dashboard's is, so that Cube's
// cache reaches its steady state.
func mix(token Token, now time.Time) []call {
	var queries [][]byte
	for _, days := range []int{7, 30, 90} {
		for _, q := range dashboards.QueriesOver(now, days) {
			queries = append(queries, q.Query)
		}
	}
	auth := map[int64]string{1: "Bearer " + token(1), 2: "Bearer " + token(2), 3: "Bearer " + token(3)}
	path := func(project int64, endpoint string) string {
		return fmt.Sprintf("/api/v4/projects/%d/product_analytics/request/%s", project, endpoint)
	}
	anyProject := func(r *rand.Rand) int64 { return 1 + r.Int64N(2) }
	post := func(endpoint string, project func(*rand.Rand) int64, body func(*rand.Rand) string, auth func(int64) string) func(string, *rand.Rand) (*http.Request, error) {
		return func(base string, r *rand.Rand) (*http.Request, error) {
			p := project(r)
			req, err := newRequest("POST", base+path(p, endpoint), body(r))
			if err == nil && auth(p) != "" {
				req.Header.Set("Authorization", auth(p))
			}
			return req, err
		}
	}
	dashboard := func(r *rand.Rand) string { return seed.Body(string(queries[r.IntN(len(queries))])) }
	fixed := func(s string) func(*rand.Rand) string { return func(*rand.Rand) string { return s } }
	own := func(p int64) string { return auth[p] }
	project := func(p int64) func(*rand.Rand) int64 { return func(*rand.Rand) int64 { return p } }
	return []call{
		{"load: a dashboard panel", 40, post("load", anyProject, dashboard, own), http.StatusOK},
		{"load: the documentation's example", 8, post("load", anyProject, fixed(seed.Body(seed.TrackedEvents)), own), http.StatusOK},
		{"dry-run: a dashboard panel", 10, post("dry-run", anyProject, dashboard, own), http.StatusOK},
		{"meta", 10, func(base string, r *rand.Rand) (*http.Request, error) {
			p := anyProject(r)
			req, err := newRequest("GET", base+path(p, "meta"), "")
			if err == nil {
				req.Header.Set("Authorization", auth[p])
			}
			return req, err
		}, http.StatusOK},
		{"refused: no credentials", 5, post("load", anyProject, dashboard, func(int64) string { return "" }), http.StatusUnauthorized},
		{"refused: another project", 5, post("load", project(1), dashboard, func(int64) string { return auth[2] }), http.StatusNotFound},
		{"refused: a project without data", 2, post("load", project(3), dashboard, own), http.StatusNotFound},
		{"bad: a time zone that is no zone", 4, post("load", anyProject, fixed(`{"query":{"measures":["TrackedEvents.count"],"timezone":"UTC' OR 1=1 --"}}`), own), http.StatusBadRequest},
		{"bad: a member the model lacks", 4, post("load", anyProject, fixed(`{"query":{"measures":["TrackedEvents.nope"]}}`), own), http.StatusBadRequest},
		{"bad: not JSON", 4, post("dry-run", anyProject, fixed(`{"query":`), own), http.StatusBadRequest},
		{"bad: a method the route does not take", 4, func(base string, r *rand.Rand) (*http.Request, error) {
			req, err := newRequest("PUT", base+path(1, "load"), seed.Body(seed.Sessions))
			if err == nil {
				req.Header.Set("Authorization", auth[1])
			}
			return req, err
		}, http.StatusMethodNotAllowed},
		{"bad: no such route", 4, post("lead", anyProject, dashboard, own), http.StatusNotFound},
	}
}

// pick chooses a call by weight.
func pick(calls []call, total int, r *rand.Rand) *call {
	n := r.IntN(total)
	for i := range calls {
		if n -= calls[i].weight; n < 0 {
			return &calls[i]
		}
	}
	return &calls[len(calls)-1]
}
