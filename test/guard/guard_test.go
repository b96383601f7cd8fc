// Package guard holds the API's query rules (shared/request) and Cube's
// query guard (cube/queryguard.js) to one verdict: each is a wall of its
// own against a query that reaches outside its project, and a query one
// lets through and the other refuses is either a hole or a broken client.
package guard

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"productanalytics/internal/attacks"
	"productanalytics/internal/seed"
	"productanalytics/internal/stack"
	"productanalytics/shared/dashboards"
	"productanalytics/shared/request"
)

// randomCases is how many generated queries are compared, each valid or
// with one thing wrong; randomBlends how many arrays of them.
const (
	randomCases  = 3000
	randomBlends = 400
)

// verdict is the guard's answer on one query, as the check script prints it.
type verdict struct {
	OK    bool   `json:"ok"`
	Field string `json:"field"`
	Error string `json:"error"`
	Cube  string `json:"cube"`
}

type guardAnswer struct {
	Raw        verdict `json:"raw"`
	Normalized verdict `json:"normalized"`
}

func TestGuardAgreesWithTheAPI(t *testing.T) {
	cases := corpus()
	queries := make([]string, len(cases))
	for i, c := range cases {
		queries[i] = c.query
	}
	answers := runGuard(t, queries)
	// What the API sends on for the queries it accepts, as Cube hands it
	// to the guard after its own check and normalisation.
	var sent []string
	var sentFrom []testCase
	disagree := 0
	fail := func(format string, args ...any) {
		t.Errorf(format, args...)
		if disagree++; disagree > 20 {
			t.Fatal("too many disagreements")
		}
	}
	for i, c := range cases {
		a := answers[i].Raw
		call, err := parseCall(c.query)
		var re *request.Error
		switch {
		case err != nil && !errors.As(err, &re):
			t.Fatalf("the API's error is not a refusal: %v", err)
		case a.Error != "":
			fail("the guard failed on %s: %s", c.query, a.Error)
		case err == nil && !a.OK:
			fail("the API accepts and the guard refuses (%s):\n%s", a.Field, c.query)
		case err != nil && a.OK:
			fail("the API refuses (%v) and the guard accepts:\n%s", err, c.query)
		case err != nil && re.Field != a.Field:
			fail("the API names %q and the guard %q:\n%s", re.Field, a.Field, c.query)
		case err == nil:
			sent = append(sent, string(call.AppendQuery(nil)))
			sentFrom = append(sentFrom, c)
		}
	}
	for i, a := range runGuard(t, sent) {
		switch n := a.Normalized; {
		case n.OK:
		case strings.HasPrefix(n.Cube, "Can't parse date") && sentFrom[i].mutated:
			// A relative date range Cube cannot read: Cube answers 400.
		default:
			fail("the API sends what its Cube refuses (%+v):\n%s", n, sent[i])
		}
	}
	t.Logf("%d queries, the same verdict on each; %d accepted, each accepted by the guard after Cube normalised it", len(cases), len(sent))
}

// parseCall reads a call's query (an object, or an array: a blend) as the
// API reads a body's.
func parseCall(query string) (request.Call, error) {
	b, err := request.ParseBody([]byte(`{"query":` + query + `}`))
	return request.Call{Queries: b.Queries, Blend: b.Blend}, err
}

// TestGuardRefusesEveryAttack: on its own, as Cube runs it.
func TestGuardRefusesEveryAttack(t *testing.T) {
	all := attacks.All(2)
	qs := make([]string, len(all))
	for i, a := range all {
		qs[i] = a.Query
	}
	answers := runGuard(t, qs)
	for i, a := range all {
		if got := answers[i]; got.Raw.OK || !strings.HasPrefix(got.Raw.Field, a.Field) {
			t.Errorf("%s: guard %+v; want a refusal naming %s", a.Name, got.Raw, a.Field)
		}
		if got := answers[i].Normalized; got.OK {
			t.Errorf("%s: accepted once Cube normalised it", a.Name)
		}
	}
}

// runGuard sends the queries through cube/scripts/guard-check.js.
func runGuard(t *testing.T, queries []string) []guardAnswer {
	t.Helper()
	root, err := stack.Root(".")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := stack.InstallCube(ctx, root, os.Stderr); err != nil {
		t.Fatal(err)
	}
	var in bytes.Buffer
	for _, q := range queries {
		var compact bytes.Buffer
		if err := json.Compact(&compact, []byte(q)); err != nil {
			t.Fatalf("case is not JSON: %v\n%s", err, q)
		}
		in.Write(compact.Bytes())
		in.WriteByte('\n')
	}
	cmd := exec.CommandContext(ctx, "node", filepath.Join("scripts", "guard-check.js"))
	cmd.Dir = stack.CubeDir(root)
	cmd.Stdin = &in
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("guard-check.js: %v\n%s", err, stderr.String())
	}
	var answers []guardAnswer
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var a guardAnswer
		if err := json.Unmarshal(sc.Bytes(), &a); err != nil {
			t.Fatalf("guard-check.js printed %q: %v", sc.Text(), err)
		}
		answers = append(answers, a)
	}
	if len(answers) != len(queries) {
		t.Fatalf("%d answers for %d queries\n%s", len(answers), len(queries), stderr.String())
	}
	return answers
}

// testCase is one query compared; mutated says one thing was made wrong.
type testCase struct {
	query   string
	mutated bool
}

// corpus is the queries compared: real clients', the attacks, and random
// ones built from the grammar, valid or with one thing wrong.
func corpus() []testCase {
	cs := []testCase{{query: seed.TrackedEvents}, {query: seed.Sessions}}
	for _, q := range dashboards.Queries(time.Now()) {
		cs = append(cs, testCase{query: string(q.Query)})
	}
	for _, a := range attacks.All(2) {
		cs = append(cs, testCase{query: a.Query, mutated: true})
	}
	rng := rand.New(rand.NewPCG(1, 2)) // fixed, so a failure can be replayed
	for i := range randomCases {
		q := randomQuery(rng)
		mutated := i%2 == 1
		if mutated {
			mutate(rng, q)
		}
		b, err := json.Marshal(q)
		if err != nil {
			panic(err)
		}
		cs = append(cs, testCase{query: string(b), mutated: mutated})
	}
	// Blends: arrays of such queries, each valid or with one thing wrong.
	for i := range randomBlends {
		call := make([]any, 1+rng.IntN(request.MaxQueries+2))
		mutated := i%2 == 1
		for j := range call {
			q := randomQuery(rng)
			if mutated && rng.IntN(len(call)) == 0 {
				mutate(rng, q)
			}
			call[j] = q
		}
		b, err := json.Marshal(call)
		if err != nil {
			panic(err)
		}
		cs = append(cs, testCase{query: string(b), mutated: mutated})
	}
	return cs
}

var (
	cubes       = []string{"TrackedEvents", "Sessions"}
	names       = []string{"count", "uniqueUsersCount", "pageUrlpath", "agentName", "startAt", "derivedTstamp", "x_1"}
	grans       = []string{"second", "minute", "hour", "day", "week", "month", "quarter", "year"}
	zones       = []string{"UTC", "America/Los_Angeles", "Europe/Berlin", "Asia/Kolkata", "Etc/GMT+5", "America/Argentina/Buenos_Aires", "Pacific/Chatham"}
	relative    = []string{"today", "yesterday", "this week", "This week", "last week", "last 7 days", "last 30 days", "from 7 days ago to now", "last month", "this year"}
	dates       = []string{"2024-01-01", "2024-02-29", "2023-12-31T23:59:59", "2024-01-31T12:00:00.000", "2024-06-01 08:30:00", "2024-03-10T00:00:00Z"}
	valueOps    = []string{"equals", "notEquals", "contains", "notContains", "startsWith", "notStartsWith", "endsWith", "notEndsWith", "in", "notIn", "gt", "gte", "lt", "lte"}
	dateOps     = []string{"inDateRange", "notInDateRange", "onTheDate", "beforeDate", "beforeOrOnDate", "afterDate", "afterOrOnDate"}
	noValueOps  = []string{"set", "notSet", "measureFilter"}
	texts       = []any{"page_view", "café <b>&\"'", "", "/path?q=1#x", 42.0, 2.5, true, false, "   ", strings.Repeat("é", 100)}
	payloadList = []string{"UTC')) x --", "x'; COPY (SELECT 1) TO 'f'; --", "a\x00b", "Local", "../etc", strings.Repeat("z", 200), "A.b.c.d", "", "A..b", "2024-13-01", "day'", "DESC"}
)

func pick[T any](rng *rand.Rand, list []T) T { return list[rng.IntN(len(list))] }

func member(rng *rand.Rand, cube string) string { return cube + "." + pick(rng, names) }

func randomQuery(rng *rand.Rand) map[string]any {
	cube := pick(rng, cubes)
	q := map[string]any{}
	n := rng.IntN(4)
	if n > 0 || rng.IntN(2) == 0 {
		var ms []any
		for range max(n, 1) {
			ms = append(ms, member(rng, cube))
		}
		q["measures"] = ms
	}
	if rng.IntN(2) == 0 {
		var ds []any
		for range 1 + rng.IntN(3) {
			d := member(rng, cube)
			if rng.IntN(4) == 0 {
				d += "." + pick(rng, grans[:len(grans)-2]) // no quarter among dimensions
			}
			ds = append(ds, d)
		}
		q["dimensions"] = ds
	}
	if rng.IntN(4) == 0 {
		q["segments"] = []any{member(rng, cube)}
	}
	if rng.IntN(2) == 0 {
		var tds []any
		compared := false
		for range 1 + rng.IntN(2) {
			td := map[string]any{"dimension": member(rng, cube)}
			if rng.IntN(2) == 0 {
				td["granularity"] = pick(rng, grans)
			}
			switch rng.IntN(4) {
			case 0:
				td["dateRange"] = pick(rng, relative)
			case 1:
				td["dateRange"] = []any{pick(rng, dates), pick(rng, dates)}
			case 2:
				if !compared {
					compared = true
					td["compareDateRange"] = []any{pick(rng, relative), []any{pick(rng, dates), pick(rng, dates)}}
				}
			}
			tds = append(tds, td)
		}
		q["timeDimensions"] = tds
	}
	if rng.IntN(2) == 0 {
		q["filters"] = randomFilters(rng, cube, 1)
	}
	if rng.IntN(3) == 0 {
		if rng.IntN(2) == 0 {
			q["order"] = map[string]any{member(rng, cube): pick(rng, []string{"asc", "desc"})}
		} else {
			q["order"] = []any{[]any{member(rng, cube), pick(rng, []string{"asc", "desc"})}}
		}
	}
	if rng.IntN(2) == 0 {
		q["limit"] = 1 + rng.IntN(request.MaxLimit)
	}
	if rng.IntN(3) == 0 {
		q["offset"] = rng.IntN(100000)
	}
	if rng.IntN(2) == 0 {
		q["timezone"] = pick(rng, zones)
	}
	for _, k := range []string{"total", "ungrouped", "renewQuery"} {
		if rng.IntN(6) == 0 {
			q[k] = rng.IntN(2) == 0
		}
	}
	if rng.IntN(6) == 0 {
		q["responseFormat"] = pick(rng, []string{"default", "compact"})
	}
	if q["measures"] == nil && q["dimensions"] == nil {
		q["measures"] = []any{member(rng, cube)}
	}
	return q
}

func randomFilters(rng *rand.Rand, cube string, depth int) []any {
	var fs []any
	for range 1 + rng.IntN(3) {
		if depth < 3 && rng.IntN(4) == 0 {
			fs = append(fs, map[string]any{pick(rng, []string{"or", "and"}): randomFilters(rng, cube, depth+1)})
			continue
		}
		key := "member"
		if rng.IntN(4) == 0 {
			key = "dimension"
		}
		f := map[string]any{key: member(rng, cube)}
		switch rng.IntN(3) {
		case 0:
			f["operator"] = pick(rng, valueOps)
			var vs []any
			for range 1 + rng.IntN(3) {
				vs = append(vs, pick(rng, texts))
			}
			f["values"] = vs
		case 1:
			op := pick(rng, dateOps)
			f["operator"] = op
			if strings.HasSuffix(op, "DateRange") {
				f["values"] = []any{pick(rng, dates), pick(rng, dates)}
			} else {
				f["values"] = []any{pick(rng, dates)}
			}
		default:
			f["operator"] = pick(rng, noValueOps)
		}
		fs = append(fs, f)
	}
	return fs
}

// mutate makes one thing wrong (or, by chance, something that is still
// right) somewhere in q.
func mutate(rng *rand.Rand, q map[string]any) {
	// The objects and arrays of q, with a way to replace each child.
	type slot struct {
		get func() any
		set func(any)
	}
	var slots []slot
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, c := range x {
				slots = append(slots, slot{func() any { return x[k] }, func(n any) { x[k] = n }})
				walk(c)
			}
		case []any:
			for i, c := range x {
				slots = append(slots, slot{func() any { return x[i] }, func(n any) { x[i] = n }})
				walk(c)
			}
		}
	}
	walk(q)
	switch rng.IntN(6) {
	case 0: // an unknown key in some object
		objs := []map[string]any{q}
		for _, s := range slots {
			if m, ok := s.get().(map[string]any); ok {
				objs = append(objs, m)
			}
		}
		pick(rng, objs)[pick(rng, []string{"sql", "rowLimit", "Timezone", "x y", "__proto__"})] = "x"
	case 1: // the query itself of the wrong kind of thing
		if len(slots) > 0 {
			pick(rng, slots).set(pick(rng, []any{42.0, "text", true, []any{}, map[string]any{}, nil}))
		}
	case 2: // a bound passed
		many := make([]any, request.MaxMembers+1)
		for i := range many {
			many[i] = fmt.Sprintf("Sessions.m%d", i)
		}
		q["measures"] = many
	case 3: // a number out of range
		q[pick(rng, []string{"limit", "offset"})] = pick(rng, []any{-1.0, 0.0, 50001.0, 1.5, 1e300, 2147483648.0})
	default: // a hostile string in place of any string
		var strs []slot
		for _, s := range slots {
			if _, ok := s.get().(string); ok {
				strs = append(strs, s)
			}
		}
		if len(strs) > 0 {
			pick(rng, strs).set(pick(rng, payloadList))
		} else {
			q["timezone"] = pick(rng, payloadList)
		}
	}
}
