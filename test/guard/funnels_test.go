package guard

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"productanalytics/internal/stack"
	"productanalytics/shared/funnels"
)

// parseInJS runs cube/funnels.js's parse on each file and returns its
// verdicts: {"funnel": ...}, {"skipped": true} or {"invalid": reason}.
const parseInJS = `
const { parse } = require('./funnels');
const lines = require('fs').readFileSync(0, 'utf8').split('\n').filter(Boolean);
for (const line of lines) {
  const { file, data } = JSON.parse(line);
  console.log(JSON.stringify(parse(file, Buffer.from(data, 'base64'))));
}`

type jsVerdict struct {
	Funnel  *funnels.Funnel `json:"funnel"`
	Skipped bool            `json:"skipped"`
	Invalid string          `json:"invalid"`
}

// TestFunnelRulesAgree: the API (shared/funnels) and Cube (cube/funnels.js)
// give the same verdict on the same definition files, and read the same
// funnel from each valid one: Cube checks every file again itself.
func TestFunnelRulesAgree(t *testing.T) {
	step := func(name, action, target string) string {
		return "  - name: " + name + "\n    action: " + action + "\n    target: " + target + "\n"
	}
	steps := func(n int) string {
		var b strings.Builder
		for i := range n {
			b.WriteString(step("s", "pageview", "/p/"+strings.Repeat("a", i+1)))
		}
		return b.String()
	}
	ok := "seconds_to_convert: 3600\nsteps:\n" + step("home", "pageview", "/") + step("install", "pageview", "/install")
	files := []struct{ name, file, data string }{
		{"valid", "Completed Purchase.yml", ok},
		{"yaml", "x.yaml", ok},
		{"flow style", "x.yml", "{seconds_to_convert: 60, steps: [{name: a, action: pageview, target: /a}]}"},
		{"quoted number", "x.yml", strings.Replace(ok, "3600", `'3600'`, 1)},
		{"anchors and aliases", "x.yml", "seconds_to_convert: &w 60\nsteps:\n  - &s {name: a, action: pageview, target: /a}\n  - {name: b, action: pageview, target: /b}\n"},
		{"alias of a step", "x.yml", "seconds_to_convert: 60\nsteps:\n  - &s {name: a, action: pageview, target: /a}\n  - *s\n"},
		{"empty", "x.yml", ""},
		{"null document", "x.yml", "~\n"},
		{"missing steps", "x.yml", "seconds_to_convert: 60\n"},
		{"empty steps value", "x.yml", "seconds_to_convert: 60\nsteps:\n"},
		{"tilde window", "x.yml", strings.Replace(ok, "3600", "~", 1)},
		{"null window", "x.yml", strings.Replace(ok, "3600", "null", 1)},
		{"empty string window", "x.yml", strings.Replace(ok, "3600", `""`, 1)},
		{"hex window", "x.yml", strings.Replace(ok, "3600", "0x10", 1)},
		{"octal window", "x.yml", strings.Replace(ok, "3600", "0o17", 1)},
		{"leading zero", "x.yml", strings.Replace(ok, "3600", "010", 1)},
		{"underscores", "x.yml", strings.Replace(ok, "3600", "3_600", 1)},
		{"float", "x.yml", strings.Replace(ok, "3600", "60.0", 1)},
		{"huge", "x.yml", strings.Replace(ok, "3600", "99999999999999999999", 1)},
		{"a year", "x.yml", strings.Replace(ok, "3600", "31622400", 1)},
		{"over a year", "x.yml", strings.Replace(ok, "3600", "31622401", 1)},
		{"boolean step name", "x.yml", "seconds_to_convert: 60\nsteps:\n" + step("true", "pageview", "/a")},
		{"numeric target", "x.yml", "seconds_to_convert: 60\nsteps:\n" + step("a", "pageview", "404")},
		{"quote in target", "x.yml", "seconds_to_convert: 60\nsteps:\n" + step("a", "pageview", `"/a'); DROP TABLE x; --"`)},
		{"backslash in target", "x.yml", "seconds_to_convert: 60\nsteps:\n" + step("a", "pageview", `'/a\\'`)},
		{"newline in target", "x.yml", "seconds_to_convert: 60\nsteps:\n" + step("a", "pageview", `"/a\n/b"`)},
		{"unicode target", "x.yml", "seconds_to_convert: 60\nsteps:\n" + step("a", "pageview", "/café")},
		{"unicode step name", "x.yml", "seconds_to_convert: 60\nsteps:\n" + step("café", "pageview", "/a")},
		{"mapping target", "x.yml", "seconds_to_convert: 60\nsteps:\n  - {name: a, action: pageview, target: {x: 1}}\n"},
		{"path trick target", "x.yml", "seconds_to_convert: 60\nsteps:\n" + step("a", "pageview", "../../../etc/passwd")},
		{"repeated target", "x.yml", "seconds_to_convert: 60\nsteps:\n" + step("a", "pageview", "/a") + step("b", "pageview", "/a")},
		{"20 steps", "x.yml", "seconds_to_convert: 60\nsteps:\n" + steps(20)},
		{"21 steps", "x.yml", "seconds_to_convert: 60\nsteps:\n" + steps(21)},
		{"10,000 steps", "x.yml", "seconds_to_convert: 60\nsteps:\n" + strings.Repeat("  - {name: a, action: pageview, target: /}\n", 10000)},
		{"10,000 steps by alias", "x.yml", "seconds_to_convert: 60\nsteps: [&s {name: a, action: pageview, target: /}" + strings.Repeat(", *s", 9999) + "]\n"},
		{"a 1 MB file", "x.yml", ok + "#" + strings.Repeat("x", 1<<20)},
		{"just under the bound", "x.yml", ok + "#" + strings.Repeat("x", funnels.MaxFileBytes-len(ok)-1)},
		{"just over the bound", "x.yml", ok + "#" + strings.Repeat("x", funnels.MaxFileBytes-len(ok))},
		{"duplicate key", "x.yml", "steps: []\n" + ok},
		{"duplicate step key", "x.yml", "seconds_to_convert: 60\nsteps:\n  - {name: a, name: b, action: pageview, target: /a}\n"},
		{"two documents", "x.yml", ok + "---\n" + ok},
		{"broken YAML", "x.yml", "seconds_to_convert: [60\n"},
		{"tabs", "x.yml", "seconds_to_convert: 60\nsteps:\n\t- name: a\n"},
		{"a list", "x.yml", "- a\n- b\n"},
		{"a scalar", "x.yml", "hello\n"},
		{"other action", "x.yml", "seconds_to_convert: 60\nsteps:\n" + step("a", "click", "/a")},
		{"name of symbols", "'--.yml", ok},
		{"name with SQL", "x'); DROP TABLE y; --.yml", ok},
		{"name with a digit first", "2024 funnel.yml", ok},
		{"name in another script", "Воронка.yml", ok},
		{"long name", strings.Repeat("n", 65) + ".yml", ok},
		{"hidden file", ".x.yml", ok},
		{"reserved name", "Constructor.yml", ok},
		{"reserved name too", "prototype.yaml", ok},
		{"path in the name", "../x.yml", ok},
		{"not yaml", "x.json", ok},
	}
	root, err := stack.Root(".")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := stack.InstallCube(ctx, root, os.Stderr); err != nil {
		t.Fatal(err)
	}
	var in bytes.Buffer
	for _, f := range files {
		line, _ := json.Marshal(map[string]string{"file": f.file, "data": base64.StdEncoding.EncodeToString([]byte(f.data))})
		in.Write(append(line, '\n'))
	}
	cmd := exec.CommandContext(ctx, "node", "-e", parseInJS)
	cmd.Dir = stack.CubeDir(root)
	cmd.Stdin = &in
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node: %v\n%s", err, stderr.String())
	}
	var verdicts []jsVerdict
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		var v jsVerdict
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			t.Fatalf("node printed %q: %v", sc.Text(), err)
		}
		verdicts = append(verdicts, v)
	}
	if len(verdicts) != len(files) {
		t.Fatalf("%d verdicts for %d files", len(verdicts), len(files))
	}
	for i, f := range files {
		t.Run(f.name, func(t *testing.T) {
			js := verdicts[i]
			got, err := funnels.Parse(f.file, []byte(f.data))
			var inv *funnels.Invalid
			switch {
			case errors.Is(err, funnels.ErrSkipped):
				if !js.Skipped {
					t.Fatalf("the API skips it, Cube: %+v", js)
				}
			case errors.As(err, &inv):
				if js.Invalid == "" {
					t.Fatalf("the API refuses it (%s), Cube: %+v", inv.Reason, js)
				}
				// The reasons are the same words, but for YAML's own.
				if !strings.HasPrefix(inv.Reason, "is not valid YAML") && inv.Reason != js.Invalid {
					t.Errorf("the API says %q, Cube %q", inv.Reason, js.Invalid)
				}
			case err != nil:
				t.Fatal(err)
			default:
				if js.Funnel == nil {
					t.Fatalf("the API reads %+v, Cube: %+v", got, js)
				}
				a, _ := json.Marshal(got)
				b, _ := json.Marshal(js.Funnel)
				if !bytes.Equal(a, b) {
					t.Errorf("the API reads %s, Cube %s", a, b)
				}
			}
		})
	}
}
