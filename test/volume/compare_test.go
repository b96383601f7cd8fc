package volume

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// tolerance is how far two figures may differ, relative to the larger
// (or absolutely below 1): what float arithmetic done in another order
// leaves, far below any figure a dashboard shows.
const tolerance = 1e-9

// differences lists how Cube's rows (as the API answered them) differ from
// the rows want, in order. Cube sends figures as text and days as
// 2006-01-02T00:00:00.000 under both <member> and <member>.day.
func differences(got []map[string]any, want []row) []string {
	var out []string
	if len(got) != len(want) {
		out = append(out, fmt.Sprintf("%d rows, want %d", len(got), len(want)))
	}
	for i := range min(len(got), len(want)) {
		for _, d := range rowDifferences(got[i], want[i]) {
			out = append(out, fmt.Sprintf("row %d: %s", i, d))
		}
		if len(out) > 10 {
			return append(out, "...")
		}
	}
	return out
}

func rowDifferences(got map[string]any, want row) []string {
	var out []string
	for m, w := range want {
		g, ok := got[m]
		if !ok {
			out = append(out, fmt.Sprintf("no %s in %v", m, got))
			continue
		}
		if day, ok := strings.CutSuffix(m, ".day"); ok {
			if s, _ := g.(string); s != w.(string)+"T00:00:00.000" || fmt.Sprint(got[day]) != s {
				out = append(out, fmt.Sprintf("%s is %v (and %s %v), want the day %s", m, g, day, got[day], w))
			}
			continue
		}
		if wf, isFigure := w.(float64); isFigure {
			gf, ok := number(g)
			if !ok || !near(gf, wf) {
				out = append(out, fmt.Sprintf("%s is %v, want %s", m, g, strconv.FormatFloat(wf, 'g', -1, 64)))
			}
			continue
		}
		if g != w {
			out = append(out, fmt.Sprintf("%s is %#v, want %#v", m, g, w))
		}
	}
	for m := range got {
		_, wanted := want[m]
		_, wantedDay := want[m+".day"]
		if !wanted && !wantedDay {
			out = append(out, fmt.Sprintf("unexpected member %s: %v", m, got[m]))
		}
	}
	return out
}

// number reads a figure as Cube's clients do: text, or a JSON number.
func number(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case string:
		f, err := strconv.ParseFloat(x, 64)
		return f, err == nil
	}
	return 0, false
}

func near(a, b float64) bool {
	return math.Abs(a-b) <= tolerance*math.Max(1, math.Max(math.Abs(a), math.Abs(b)))
}

// columnDifferences lists how rows of plain SQL (columns: the day, if the
// query is by day, then its dimensions, then its measure) differ from the
// rows want of query.
func columnDifferences(got [][]any, want []row, query []byte) []string {
	var q cubeQuery
	if err := json.Unmarshal(query, &q); err != nil {
		return []string{err.Error()}
	}
	var members []string
	for _, td := range q.TimeDimensions {
		if td.Granularity != "" {
			members = append(members, td.Dimension+"."+td.Granularity)
		}
	}
	members = append(append(members, q.Dimensions...), q.Measures...)
	var out []string
	if len(got) != len(want) {
		out = append(out, fmt.Sprintf("%d rows, want %d", len(got), len(want)))
	}
	for i := range min(len(got), len(want)) {
		if len(got[i]) != len(members) {
			out = append(out, fmt.Sprintf("row %d: %d columns, want %v", i, len(got[i]), members))
			continue
		}
		for j, m := range members {
			g, w := got[i][j], want[i][m]
			switch {
			case strings.HasSuffix(m, ".day"):
				if s, _ := g.(string); len(s) < 10 || s[:10] != w {
					out = append(out, fmt.Sprintf("row %d: the day is %v, want %v", i, g, w))
				}
			case isFigure(w):
				if gf, ok := number(g); !ok || !near(gf, w.(float64)) {
					out = append(out, fmt.Sprintf("row %d: %s is %v, want %v", i, m, g, w))
				}
			case g != w:
				out = append(out, fmt.Sprintf("row %d: %s is %#v, want %#v", i, m, g, w))
			}
		}
		if len(out) > 10 {
			return append(out, "...")
		}
	}
	return out
}

func isFigure(v any) bool {
	_, ok := v.(float64)
	return ok
}
