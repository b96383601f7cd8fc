package tenants

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"productanalytics/internal/logcheck"
	"productanalytics/internal/stack"
	"productanalytics/shared/dashboards"
)

// defaultFunnelProjects is how many projects with funnels
// BenchmarkFunnelTenants measures (FUNNEL_TENANTS): within Cube's default
// bound of compiled funnel models (CUBE_MAX_FUNNEL_MODELS, 20).
const defaultFunnelProjects = 20

// funnelDefinition is a funnel of the demo site's pages.
func funnelDefinition(window int) string {
	return "seconds_to_convert: " + strconv.Itoa(window) + "\nsteps:\n" +
		"  - {name: home, action: pageview, target: /}\n" +
		"  - {name: install, action: pageview, target: /install}\n" +
		"  - {name: docker, action: pageview, target: /install/docker}\n"
}

// BenchmarkFunnelTenants measures what a project with funnels costs Cube
// beside one without: FUNNEL_TENANTS projects without funnels answer a
// dashboard panel (the shared model, compiled once), then as many projects
// with two funnels each answer a funnel (each a model of its own): Cube's
// RSS per project in each case, the compilations, and a project's first
// funnel query (its model compiled) beside its second (the same model, a
// query Cube has not cached).
func BenchmarkFunnelTenants(b *testing.B) {
	n := intEnv(b, "FUNNEL_TENANTS", defaultFunnelProjects)
	events := intEnv(b, "TENANT_EVENTS", defaultEvents)
	ctx := context.Background()
	if err := stack.InstallCube(ctx, root, os.Stderr); err != nil {
		b.Fatal(err)
	}
	dir := filepath.Join(root, ".local", "bench-tenants", fmt.Sprintf("events-%d", events))
	if err := generate(ctx, dir, sameEvents(2*n+1, events)); err != nil {
		b.Fatal(err)
	}
	defs := b.TempDir()
	// Projects n+2..2n+1 have funnels; 1..n+1 have none.
	for p := n + 2; p <= 2*n+1; p++ {
		pd := filepath.Join(defs, strconv.Itoa(p))
		if err := os.MkdirAll(pd, 0o700); err != nil {
			b.Fatal(err)
		}
		for name, window := range map[string]int{"install.yml": 3600, "quick install.yml": 600} {
			if err := os.WriteFile(filepath.Join(pd, name), []byte(funnelDefinition(window)), 0o600); err != nil {
				b.Fatal(err)
			}
		}
	}
	log := &cubeLog{}
	env, err := stack.Start(ctx, stack.Options{Root: root, DataDir: dir, CubeLog: log, CubeEnv: []string{"CUBE_FUNNELS_DIR=" + defs}})
	if err != nil {
		b.Fatalf("%v\n%s", err, logcheck.LastLines(log.String(), 20))
	}
	defer env.Close()
	c := newClient(env.CubeURL)
	rss := cubeRSS(b, env)
	now := time.Now().UTC()
	panel := string(dashboards.Queries(now)[1].Query)
	funnel := func(name string, days int) string {
		return fmt.Sprintf(`{"measures":["%[1]s.count"],"dimensions":["%[1]s.step"],"filters":[{"member":"%[1]s.date","operator":"inDateRange","values":["%[2]s","%[3]s"]}]}`,
			name, now.AddDate(0, 0, -days).Format("2006-01-02"), now.Format("2006-01-02"))
	}
	mustLoad := func(p int64, q string) float64 {
		start := time.Now()
		if _, err := load(ctx, c, p, q); err != nil {
			b.Fatal(err)
		}
		return msSince(start)
	}

	b.ResetTimer()
	for b.Loop() {
		mustLoad(1, panel)
		base, baseCompilations := rss(), log.Compilations()
		for p := int64(2); p <= int64(n+1); p++ {
			mustLoad(p, panel)
		}
		plain, plainCompilations := rss(), log.Compilations()
		var first, second []float64
		for p := int64(n + 2); p <= int64(2*n+1); p++ {
			first = append(first, mustLoad(p, funnel("install", 30)))
			second = append(second, mustLoad(p, funnel("quick_install", 7)))
			mustLoad(p, panel)
		}
		withFunnels, funnelCompilations := rss(), log.Compilations()
		perPlain := (plain - base) / float64(n)
		perFunnel := (withFunnels - plain) / float64(n)
		fmt.Printf("Cube RSS: %.0f MB with one project; %d projects without funnels: %+.2f MB/project, %d compilations; "+
			"%d projects with 2 funnels: %+.2f MB/project, %d compilations\n",
			base, n, perPlain, plainCompilations-baseCompilations, n, perFunnel, funnelCompilations-plainCompilations)
		fmt.Printf("a project's first funnel query (its model compiled): median %.0f ms; its second (compiled): %.0f ms; difference %.0f ms\n",
			median(first), median(second), medianDiff(first, second))
		b.ReportMetric(perPlain, "MB/plain-project")
		b.ReportMetric(perFunnel, "MB/funnel-project")
		b.ReportMetric(medianDiff(first, second), "ms-compile")
		b.ReportMetric(float64(funnelCompilations-plainCompilations), "funnel-compilations")
	}
}
