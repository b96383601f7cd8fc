package deploy

import (
	"fmt"
	"strings"
	"testing"
)

func deployments(names ...string) []Deployment {
	var out []Deployment
	for i, n := range names {
		out = append(out, Deployment{Name: n, URL: fmt.Sprintf("http://127.0.0.1:%d", 4000+i), KeySecretID: "key-" + n})
	}
	return out
}

func router(t *testing.T, deps []Deployment, placements map[int64]string) *Router {
	t.Helper()
	r, err := NewRouter(deps, placements)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestSpreadOverTwo(t *testing.T) {
	tests := []struct {
		name  string
		first int64
	}{
		{"ids 1 to 1000", 1},
		{"ids from a million", 1_000_000},
		{"ids from 2^40", 1 << 40},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := router(t, deployments("cube-1", "cube-2"), nil)
			count := map[string]int{}
			for p := tt.first; p < tt.first+1000; p++ {
				count[r.For(p).Name]++
			}
			t.Logf("1,000 projects over 2: %v", count)
			for _, name := range []string{"cube-1", "cube-2"} {
				// Within 10 % of even: 450 to 550 of 1,000.
				if n := count[name]; n < 450 || n > 550 {
					t.Errorf("%s has %d of 1000 projects (%v), not within 10 %% of 500", name, n, count)
				}
			}
		})
	}
}

func TestAddingADeploymentMovesOnlyItsShare(t *testing.T) {
	tests := []struct {
		name  string
		two   []string
		third string
	}{
		{"cube-3 after cube-1, cube-2", []string{"cube-1", "cube-2"}, "cube-3"},
		{"large-1 after small-a, small-b", []string{"small-a", "small-b"}, "large-1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := router(t, deployments(tt.two...), nil)
			after := router(t, deployments(append(tt.two, tt.third)...), nil)
			moved := 0
			for p := int64(1); p <= 1000; p++ {
				was, is := before.For(p).Name, after.For(p).Name
				if was == is {
					continue
				}
				if is != tt.third {
					t.Fatalf("project %d moved from %s to %s: only moves to %s are allowed", p, was, is, tt.third)
				}
				moved++
			}
			t.Logf("adding %s moved %d of 1,000 projects (%.1f %%), all to it", tt.third, moved, float64(moved)/10)
			if moved < 300 || moved > 370 {
				t.Errorf("adding %s moved %d of 1000 projects, want 30-37 %%", tt.third, moved)
			}
		})
	}
}

func TestOrderOfTheListDoesNotMatter(t *testing.T) {
	a := router(t, deployments("a", "b", "c"), nil)
	b := router(t, deployments("c", "a", "b"), nil)
	for p := int64(1); p <= 1000; p++ {
		if a.For(p).Name != b.For(p).Name {
			t.Fatalf("project %d: %s in one order, %s in another", p, a.For(p).Name, b.For(p).Name)
		}
	}
}

func TestPlacementsWin(t *testing.T) {
	deps := deployments("cube-1", "cube-2")
	free := router(t, deps, nil)
	tests := []struct {
		name    string
		project int64
	}{
		{"a project hashed to cube-1", firstOn(free, "cube-1")},
		{"a project hashed to cube-2", firstOn(free, "cube-2")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			other := "cube-1"
			if free.For(tt.project).Name == "cube-1" {
				other = "cube-2"
			}
			r := router(t, deps, map[int64]string{tt.project: other})
			if got := r.For(tt.project).Name; got != other {
				t.Fatalf("project %d placed on %s went to %s", tt.project, other, got)
			}
			if got := r.For(tt.project + 1).Name; got != free.For(tt.project+1).Name {
				t.Fatalf("an unplaced project moved to %s", got)
			}
		})
	}
}

func firstOn(r *Router, name string) int64 {
	for p := int64(1); ; p++ {
		if r.For(p).Name == name {
			return p
		}
	}
}

func TestGroup(t *testing.T) {
	r := router(t, deployments("cube-1", "cube-2"), map[int64]string{1: "cube-1", 2: "cube-2", 3: "cube-1"})
	got := r.Group([]int64{1, 2, 3})
	if fmt.Sprint(got) != "map[cube-1:[1 3] cube-2:[2]]" {
		t.Fatalf("Group: %v", got)
	}
	if d, ok := r.Deployment("cube-2"); !ok || d.URL != "http://127.0.0.1:4001" {
		t.Fatalf("Deployment(cube-2): %+v %v", d, ok)
	}
	if _, ok := r.Deployment("cube-9"); ok {
		t.Fatal("Deployment found an unlisted name")
	}
}

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		spec string
		want []Deployment
	}{
		{"one", "default=https://cube.example.com/=cube-key",
			[]Deployment{{"default", "https://cube.example.com", "cube-key"}}},
		{"two with spaces and an ARN", " small = http://127.0.0.1:4000 = arn:aws:secretsmanager:eu-west-1:123456789012:secret:k-AbCdEf , large-1=https://c.example.com:8443/cube=k2,",
			[]Deployment{{"small", "http://127.0.0.1:4000", "arn:aws:secretsmanager:eu-west-1:123456789012:secret:k-AbCdEf"}, {"large-1", "https://c.example.com:8443/cube", "k2"}}},
		{"a secret name with =", "a=http://h:1=team=analytics",
			[]Deployment{{"a", "http://h:1", "team=analytics"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.spec)
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestParseRefuses(t *testing.T) {
	tests := []struct {
		name string
		spec string
		want []string
	}{
		{"empty", "", []string{"no deployment is listed"}},
		{"only commas", " , ", []string{"entry 1 is empty"}},
		{"no secret", "a=http://h:1", []string{`"a=http://h:1" is not NAME=URL=KEY_SECRET_ID`}},
		{"empty secret", "a=http://h:1=", []string{"deployment a: the key secret id is empty"}},
		{"bad name", "a b=http://h:1=k", []string{`deployment name "a b" may hold only`}},
		{"empty name", "=http://h:1=k", []string{`deployment name "" must be 1 to 64`}},
		{"long name", strings.Repeat("x", 65) + "=http://h:1=k", []string{"must be 1 to 64 characters"}},
		{"not a URL", "a=cube:4000=k", []string{`deployment a: "cube:4000" is not an http(s) base URL`}},
		{"a query", "a=http://h:1/?x=k", []string{"deployment a"}},
		{"twice", "a=http://h:1=k,a=http://h:2=k", []string{"deployment a is listed twice"}},
		{"same URL", "a=http://h:1=k,b=http://h:1/=k", []string{"deployments a and b have the same URL http://h:1"}},
		{"every problem", "a=x=k,,b=http://h:1", []string{"entry 1:", "entry 2 is empty", "entry 3:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.spec)
			if err == nil {
				t.Fatalf("accepted %q as %+v", tt.spec, got)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

func TestParsePlacements(t *testing.T) {
	tests := []struct {
		name    string
		spec    string
		want    string
		wantErr []string
	}{
		{"empty", "", "map[]", nil},
		{"two", "42=large-1, 7 = large-1", "map[7:large-1 42:large-1]", nil},
		{"not a number", "x=large-1", "", []string{`"x" is not a project id`}},
		{"zero", "0=large-1", "", []string{`"0" is not a project id`}},
		{"negative", "-4=large-1", "", []string{`"-4" is not a project id`}},
		{"no deployment", "42", "", []string{`placement "42" is not PROJECT_ID=DEPLOYMENT`}},
		{"bad name", "42=large 1", "", []string{"may hold only"}},
		{"twice", "42=a,42=a", "", []string{"project 42 is placed twice (a and a)"}},
		{"empty entry", "42=a,,7=b", "", []string{"placement 2 is empty"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParsePlacements(tt.spec)
			if tt.wantErr == nil {
				if err != nil || fmt.Sprint(got) != tt.want {
					t.Fatalf("got %v, %v; want %s", got, err, tt.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted %q as %v", tt.spec, got)
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

func TestNewRouterRefuses(t *testing.T) {
	tests := []struct {
		name       string
		deps       []Deployment
		placements map[int64]string
		want       string
	}{
		{"none", nil, nil, "no deployment"},
		{"placed on an unknown deployment", deployments("a"), map[int64]string{42: "b"}, "project 42 is placed on b, which is not a listed deployment"},
		{"twice", deployments("a", "a"), nil, "deployment a is listed twice"},
		{"bad name", deployments("a;b"), nil, "may hold only"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewRouter(tt.deps, tt.placements)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v does not say %q", err, tt.want)
			}
		})
	}
}

func BenchmarkFor(b *testing.B) {
	for _, n := range []int{1, 3, 10} {
		names := make([]string, n)
		for i := range names {
			names[i] = fmt.Sprintf("cube-%d", i+1)
		}
		r, err := NewRouter(deployments(names...), nil)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("%d deployments", n), func(b *testing.B) {
			for i := 0; b.Loop(); i++ {
				r.For(int64(i))
			}
		})
	}
}
