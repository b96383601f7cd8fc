package funnels

import (
	"errors"
	"strings"
	"testing"
)

// valid is a definition of three steps.
const valid = `seconds_to_convert: 3600
steps:
  - name: home
    action: pageview
    target: /
  - name: install
    action: pageview
    target: /install
  - name: docker-guide
    action: pageview
    target: /install/docker.html
`

// ParseCase is a definition file and what Parse makes of it: the funnel's
// name, ErrSkipped, or a refusal whose reason holds reason.
type ParseCase struct {
	Name, File, Data string
	Funnel           string
	Skipped          bool
	Reason           string
}

// ParseCases are the definitions both Parse and cube/funnels.js are
// checked on (test/guard compares their verdicts).
func ParseCases() []ParseCase {
	step := func(name, action, target string) string {
		return "  - name: " + name + "\n    action: " + action + "\n    target: " + target + "\n"
	}
	many := func(n int) string {
		var b strings.Builder
		b.WriteString("seconds_to_convert: 60\nsteps:\n")
		for i := range n {
			b.WriteString(step("s", "pageview", "/p"+strings.Repeat("x", i%7)+"/"+string(rune('a'+i%26))+strings.Repeat("y", i/26)))
		}
		return b.String()
	}
	return []ParseCase{
		{Name: "valid", File: "Completed Purchase.yml", Data: valid, Funnel: "completed_purchase"},
		{Name: "yaml extension", File: "install.yaml", Data: valid, Funnel: "install"},
		{Name: "hyphens become underscores", File: "docs-then-install.yml", Data: valid, Funnel: "docs_then_install"},
		{Name: "quoted whole number", File: "a.yml", Data: strings.Replace(valid, "3600", `"3600"`, 1), Funnel: "a"},
		{Name: "other keys are ignored", File: "a.yml", Data: "name: old\n" + valid, Funnel: "a"},
		{Name: "20 steps", File: "a.yml", Data: many(20), Funnel: "a"},
		{Name: "empty file", File: "a.yml", Data: "", Skipped: true},
		{Name: "comments only", File: "a.yml", Data: "# nothing\n", Skipped: true},
		{Name: "no steps", File: "a.yml", Data: "seconds_to_convert: 60\n", Skipped: true},
		{Name: "no window", File: "a.yml", Data: "steps:\n" + step("a", "pageview", "/"), Skipped: true},
		{Name: "empty steps value", File: "a.yml", Data: "seconds_to_convert: 60\nsteps:\n", Skipped: true},
		{Name: "not a definition file", File: "a.json", Data: valid, Reason: "is not a .yml or .yaml file name"},
		{Name: "path in the file name", File: "../2/a.yml", Data: valid, Reason: "is not a .yml or .yaml file name"},
		{Name: "hidden file", File: ".a.yml", Data: valid, Reason: "is not a .yml or .yaml file name"},
		{Name: "name of symbols only", File: "'--.yml", Data: valid, Reason: "gives no funnel name"},
		{Name: "name starting with a digit", File: "1st.yml", Data: valid, Reason: "must start with a letter"},
		{Name: "name with SQL", File: "x'; DROP TABLE snowplow_events; --.yml", Data: valid, Funnel: "x_drop_table_snowplow_events"},
		{Name: "long name", File: strings.Repeat("a", 65) + ".yml", Data: valid, Reason: "longer than 64"},
		{Name: "a 1 MB file", File: "a.yml", Data: valid + "#" + strings.Repeat("x", 1<<20), Reason: "larger than 65536 bytes"},
		{Name: "10,000 steps", File: "a.yml", Data: many(10000)[:60000], Reason: "at most 20"},
		{Name: "21 steps", File: "a.yml", Data: many(21), Reason: "has 21 steps: at most 20"},
		{Name: "not YAML", File: "a.yml", Data: "seconds_to_convert: [60\n", Reason: "is not valid YAML"},
		{Name: "two documents", File: "a.yml", Data: valid + "---\n" + valid, Reason: "YAML"},
		{Name: "duplicate keys", File: "a.yml", Data: "seconds_to_convert: 60\n" + valid, Reason: "YAML"},
		{Name: "a list", File: "a.yml", Data: "- 1\n- 2\n", Reason: "is not a YAML mapping"},
		{Name: "a string", File: "a.yml", Data: "hello\n", Reason: "is not a YAML mapping"},
		{Name: "zero window", File: "a.yml", Data: strings.Replace(valid, "3600", "0", 1), Reason: "whole number above 0"},
		{Name: "negative window", File: "a.yml", Data: strings.Replace(valid, "3600", "-5", 1), Reason: "whole number above 0"},
		{Name: "fractional window", File: "a.yml", Data: strings.Replace(valid, "3600", "1.5", 1), Reason: "whole number above 0"},
		{Name: "hex window", File: "a.yml", Data: strings.Replace(valid, "3600", "0x10", 1), Reason: "whole number above 0"},
		{Name: "exponent window", File: "a.yml", Data: strings.Replace(valid, "3600", "1e3", 1), Reason: "whole number above 0"},
		{Name: "window as SQL", File: "a.yml", Data: strings.Replace(valid, "3600", "'1) OR 1=1 --'", 1), Reason: "whole number above 0"},
		{Name: "window over a year", File: "a.yml", Data: strings.Replace(valid, "3600", "31622401", 1), Reason: "at most 31622400"},
		{Name: "steps not a list", File: "a.yml", Data: "seconds_to_convert: 60\nsteps: /\n", Reason: "steps must be a list"},
		{Name: "no step", File: "a.yml", Data: "seconds_to_convert: 60\nsteps: []\n", Reason: "at least one step"},
		{Name: "step not a mapping", File: "a.yml", Data: "seconds_to_convert: 60\nsteps:\n  - /\n", Reason: "step 1 must be a mapping"},
		{Name: "step without target", File: "a.yml", Data: "seconds_to_convert: 60\nsteps:\n  - name: a\n    action: pageview\n", Reason: "step 1 needs a target"},
		{Name: "other action", File: "a.yml", Data: "seconds_to_convert: 60\nsteps:\n" + step("a", "click", "/"), Reason: "action must be pageview"},
		{Name: "step name with a space", File: "a.yml", Data: "seconds_to_convert: 60\nsteps:\n" + step("'a b'", "pageview", "/"), Reason: "step 1's name"},
		{Name: "target with a quote", File: "a.yml", Data: "seconds_to_convert: 60\nsteps:\n" + step("a", "pageview", `"/a'b"`), Reason: "step 1's target"},
		{Name: "target with SQL", File: "a.yml", Data: "seconds_to_convert: 60\nsteps:\n" + step("a", "pageview", `"/' OR 1=1 --"`), Reason: "step 1's target"},
		{Name: "target with a backslash", File: "a.yml", Data: "seconds_to_convert: 60\nsteps:\n" + step("a", "pageview", `'/a\'`), Reason: "step 1's target"},
		{Name: "target with a query string", File: "a.yml", Data: "seconds_to_convert: 60\nsteps:\n" + step("a", "pageview", "/a?b=1"), Reason: "step 1's target"},
		{Name: "target with a NUL", File: "a.yml", Data: "seconds_to_convert: 60\nsteps:\n" + step("a", "pageview", `"/a\0"`), Reason: "step 1's target"},
		{Name: "path trick target", File: "a.yml", Data: "seconds_to_convert: 60\nsteps:\n" + step("a", "pageview", "../../etc/passwd"), Funnel: "a"},
		{Name: "repeated target", File: "a.yml", Data: "seconds_to_convert: 60\nsteps:\n" + step("a", "pageview", "/") + step("b", "pageview", "/x") + step("c", "pageview", "/"), Reason: "step 3's target is step 1's"},
		{Name: "aliases", File: "a.yml", Data: "seconds_to_convert: 60\nsteps:\n  - &s {name: a, action: pageview, target: /}\n  - {name: b, action: pageview, target: /b}\n", Funnel: "a"},
	}
}

func TestParse(t *testing.T) {
	for _, c := range ParseCases() {
		t.Run(c.Name, func(t *testing.T) {
			f, err := Parse(c.File, []byte(c.Data))
			var inv *Invalid
			switch {
			case c.Skipped:
				if !errors.Is(err, ErrSkipped) {
					t.Fatalf("got %+v, %v; want skipped", f, err)
				}
			case c.Reason != "":
				if !errors.As(err, &inv) || !strings.Contains(inv.Reason, c.Reason) {
					t.Fatalf("got %+v, %v; want refused: %s", f, err, c.Reason)
				}
				if len(inv.Reason) > 300 {
					t.Errorf("a reason of %d bytes", len(inv.Reason))
				}
			default:
				if err != nil || f.Name != c.Funnel {
					t.Fatalf("got %+v, %v; want the funnel %s", f, err, c.Funnel)
				}
			}
		})
	}
}

func TestValidFunnel(t *testing.T) {
	f, err := Parse("install.yml", []byte(valid))
	if err != nil {
		t.Fatal(err)
	}
	want := Funnel{Name: "install", SecondsToConvert: 3600, Steps: []Step{
		{"home", "pageview", "/"}, {"install", "pageview", "/install"}, {"docker-guide", "pageview", "/install/docker.html"},
	}}
	if f.Name != want.Name || f.SecondsToConvert != want.SecondsToConvert || len(f.Steps) != 3 || f.Steps[2] != want.Steps[2] {
		t.Fatalf("got %+v, want %+v", f, want)
	}
	conds := f.Conditions()
	if conds[1] != "page_urlpath = '/install'" {
		t.Errorf("conditions %v", conds)
	}
	if sql := f.SQL(); !strings.Contains(sql, "windowFunnel(3600, 'strict_order')") || !strings.Contains(sql, "range(1, 4)") {
		t.Errorf("SQL %s", sql)
	}
}

func TestName(t *testing.T) {
	for _, c := range []struct{ file, want string }{
		{"Completed Purchase.yml", "completed_purchase"},
		{"  Sign--up  .yaml", "sign_up"},
		{"Éclair.yml", "clair"},
		{"a.b.yml", "a_b"},
		{"CamelCase.yml", "camelcase"},
	} {
		t.Run(c.file, func(t *testing.T) {
			got, err := Name(c.file)
			if err != nil || got != c.want {
				t.Fatalf("Name(%q) = %q, %v; want %q", c.file, got, err, c.want)
			}
		})
	}
}
