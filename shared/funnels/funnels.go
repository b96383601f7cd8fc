// Package funnels reads GitLab's product analytics funnel definitions: one
// YAML file per funnel, named after the file, with seconds_to_convert and
// steps (see Parse for the rules). It reads them from a folder, an S3
// prefix or a project's GitLab repository (Source), and keeps each
// project's set for a short while (Cache), for the API's allow-list of
// funnel members and its listing of a project's funnels.
//
// cube/funnels.js applies the same rules to the same files: Cube builds a
// project's funnel cubes from what it reads itself and trusts nothing of
// what the API has checked.
package funnels

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// Bounds of what a project's definitions may be. A funnel is a cube Cube
// compiles and a query that scans the project's page views once per step,
// so every dimension of it is bounded.
const (
	// MaxFileBytes bounds a definition file; a funnel of MaxSteps steps
	// with long names takes about 8 KB.
	MaxFileBytes = 64 << 10
	// MaxSteps bounds a funnel's steps. ClickHouse's windowFunnel takes
	// at most 32 conditions; each step costs the query one more pass over
	// the user's page views.
	MaxSteps = 20
	// MaxFunnels bounds a project's funnels: each is a cube of the
	// project's own compiled model.
	MaxFunnels = 50
	// MaxNameLength bounds a funnel's and a step's name.
	MaxNameLength = 64
	// MaxTargetLength bounds a step's target, a page path.
	MaxTargetLength = 512
	// MaxSecondsToConvert bounds the window: one year.
	MaxSecondsToConvert = 366 * 24 * 3600
)

// Members are the members of each funnel's cube.
var Members = []string{"count", "step", "date"}

// Step is one step of a funnel: a page view of Target.
type Step struct {
	Name   string `json:"name"`
	Action string `json:"action"`
	Target string `json:"target"`
}

// Funnel is a checked funnel definition.
type Funnel struct {
	// Name is the funnel's cube name, from its file's base name.
	Name string `json:"name"`
	// SecondsToConvert is the window, from the first step to the last.
	SecondsToConvert int64  `json:"seconds_to_convert"`
	Steps            []Step `json:"steps"`
}

// ErrSkipped is returned by Parse for a file without seconds_to_convert or
// steps: GitLab skips such files without a word.
var ErrSkipped = errors.New("the file has no seconds_to_convert or no steps: skipped")

// Invalid is a definition refused, with the reason.
type Invalid struct {
	File   string
	Reason string
}

func (e *Invalid) Error() string { return fmt.Sprintf("funnel %s: %s", e.File, e.Reason) }

var (
	stepName    = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)
	target      = regexp.MustCompile(`^[A-Za-z0-9_\-./]+$`)
	wholeNum    = regexp.MustCompile(`^[1-9][0-9]{0,9}$`)
	cubeName    = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
	notNamePart = regexp.MustCompile(`[^a-z0-9]+`)
	definition  = regexp.MustCompile(`^[^/\\]+\.ya?ml$`)
)

// IsDefinition reports whether a file name is one of a funnel: *.yml or
// *.yaml, with no folder.
func IsDefinition(file string) bool {
	return definition.MatchString(file) && !strings.HasPrefix(file, ".")
}

// reservedNames are names of JavaScript's objects' own properties: Cube
// keeps cubes in plain objects keyed by name.
var reservedNames = []string{"constructor", "prototype"}

// Name is the funnel name of a definition file: its base name without
// .yml or .yaml, parameterized with '_' as GitLab does (lower case, each
// run of other characters one '_', none at either end). GitLab keeps '-';
// here it becomes '_' too, since a Cube member name cannot hold one. The
// name must start with a letter.
func Name(file string) (string, error) {
	base := strings.TrimSuffix(strings.TrimSuffix(file, ".yml"), ".yaml")
	name := strings.Trim(notNamePart.ReplaceAllString(strings.ToLower(base), "_"), "_")
	switch {
	case name == "":
		return "", errors.New("the file name gives no funnel name: it needs letters or digits")
	case len(name) > MaxNameLength:
		return "", fmt.Errorf("the funnel name %q is longer than %d characters", name[:MaxNameLength]+"...", MaxNameLength)
	case !cubeName.MatchString(name):
		return "", fmt.Errorf("the funnel name %q must start with a letter", name)
	case slices.Contains(reservedNames, name):
		return "", fmt.Errorf("the funnel name %q is reserved", name)
	}
	return name, nil
}

// Parse reads one definition file. A file missing seconds_to_convert or
// steps gives ErrSkipped; an invalid one an *Invalid with the reason:
//   - at most MaxFileBytes, one YAML document, a mapping;
//   - seconds_to_convert a whole number > 0 (at most MaxSecondsToConvert);
//   - steps a list of 1 to MaxSteps mappings {name, action, target}: name
//     matches [\w-]+, action is pageview, target (a page path) matches
//     [\w\-./]+, and no two steps have the same target (a page view is
//     then at most one step, which the stores' SQL relies on).
//
// Scalars are read as their text, whatever YAML would make of them, so
// that seconds_to_convert: 0x10 or 1e3 is refused rather than read as
// some number.
func Parse(file string, data []byte) (Funnel, error) {
	bad := func(format string, a ...any) (Funnel, error) {
		return Funnel{}, &Invalid{File: file, Reason: fmt.Sprintf(format, a...)}
	}
	if !IsDefinition(file) {
		return bad("is not a .yml or .yaml file name")
	}
	name, err := Name(file)
	if err != nil {
		return bad("%s", err)
	}
	if len(data) > MaxFileBytes {
		return bad("is larger than %d bytes", MaxFileBytes)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	switch err := dec.Decode(&doc); {
	case errors.Is(err, io.EOF):
		return Funnel{}, ErrSkipped
	case err != nil:
		return bad("is not valid YAML: %s", oneLine(err.Error()))
	}
	var more yaml.Node
	if err := dec.Decode(&more); !errors.Is(err, io.EOF) {
		return bad("is not valid YAML: it holds more than one document")
	}
	root := resolve(&doc)
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = resolve(root.Content[0])
	}
	if isNull(root) {
		return Funnel{}, ErrSkipped
	}
	if root.Kind != yaml.MappingNode {
		return bad("is not a YAML mapping of seconds_to_convert and steps")
	}
	if k := duplicateKey(root); k != "" {
		return bad("is not valid YAML: the key %q appears twice", k)
	}
	secs, steps := value(root, "seconds_to_convert"), value(root, "steps")
	if isNull(secs) || isNull(steps) {
		return Funnel{}, ErrSkipped
	}
	f := Funnel{Name: name}
	if secs.Kind != yaml.ScalarNode || !wholeNum.MatchString(secs.Value) {
		return bad("seconds_to_convert must be a whole number above 0")
	}
	fmt.Sscan(secs.Value, &f.SecondsToConvert)
	if f.SecondsToConvert > MaxSecondsToConvert {
		return bad("seconds_to_convert must be at most %d (a year)", MaxSecondsToConvert)
	}
	if steps.Kind != yaml.SequenceNode {
		return bad("steps must be a list of steps")
	}
	switch n := len(steps.Content); {
	case n == 0:
		return bad("steps must list at least one step")
	case n > MaxSteps:
		return bad("has %d steps: at most %d", n, MaxSteps)
	}
	for i, sn := range steps.Content {
		sn = resolve(sn)
		at := i + 1
		if sn.Kind != yaml.MappingNode {
			return bad("step %d must be a mapping of name, action and target", at)
		}
		if k := duplicateKey(sn); k != "" {
			return bad("is not valid YAML: the key %q appears twice", k)
		}
		var s Step
		for _, k := range []struct {
			key string
			to  *string
		}{{"name", &s.Name}, {"action", &s.Action}, {"target", &s.Target}} {
			v := value(sn, k.key)
			if v == nil || v.Kind != yaml.ScalarNode || isNull(v) {
				return bad("step %d needs a %s", at, k.key)
			}
			*k.to = v.Value
		}
		switch {
		case len(s.Name) > MaxNameLength || !stepName.MatchString(s.Name):
			return bad("step %d's name must be letters, digits, '_' or '-' (at most %d)", at, MaxNameLength)
		case s.Action != "pageview":
			return bad("step %d's action must be pageview", at)
		case len(s.Target) > MaxTargetLength || !target.MatchString(s.Target):
			return bad("step %d's target must be a page path of letters, digits, '_', '-', '.' and '/' (at most %d)", at, MaxTargetLength)
		}
		for j, prev := range f.Steps {
			if prev.Target == s.Target {
				return bad("step %d's target is step %d's: a page may be one step only", at, j+1)
			}
		}
		f.Steps = append(f.Steps, s)
	}
	return f, nil
}

// resolve follows an alias to the node it names.
func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 8; i++ {
		n = n.Alias
	}
	return n
}

// isNull reports whether n is absent or an empty value (key: with nothing
// after it).
func isNull(n *yaml.Node) bool {
	return n == nil || n.Kind == yaml.ScalarNode && n.Value == "" && n.Tag == "!!null"
}

// duplicateKey is a scalar key mapping m holds twice, or "": YAML forbids
// it, and yaml.v3 checks it only when it decodes into a map.
func duplicateKey(m *yaml.Node) string {
	seen := map[string]bool{}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if k := resolve(m.Content[i]); k.Kind == yaml.ScalarNode {
			if seen[k.Value] {
				return oneLine(k.Value)
			}
			seen[k.Value] = true
		}
	}
	return ""
}

// value is the value of key in mapping m, or nil.
func value(m *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if k := resolve(m.Content[i]); k.Kind == yaml.ScalarNode && k.Value == key {
			return resolve(m.Content[i+1])
		}
	}
	return nil
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}

// Conditions are the funnel's steps as GitLab lists them: each step's SQL
// condition on the page path. Targets hold no quote (Parse).
func (f Funnel) Conditions() []string {
	out := make([]string, len(f.Steps))
	for i, s := range f.Steps {
		out[i] = "page_urlpath = '" + s.Target + "'"
	}
	return out
}

// SQL is the funnel's query as GitLab shows it (ClickHouse, with
// windowFunnel's strict_order), for the listing. The stores run SQL of the
// same meaning built by Cube's model (cube/model/funnelSql.js).
func (f Funnel) SQL() string {
	return fmt.Sprintf("SELECT step, countIf(level >= step) AS total FROM (SELECT domain_userid, "+
		"windowFunnel(%d, 'strict_order')(toDateTime(derived_tstamp), %s) AS level "+
		"FROM snowplow_events WHERE event = 'page_view' AND ${FILTER_PARAMS.%s.date.filter('derived_tstamp')} "+
		"GROUP BY domain_userid) ARRAY JOIN range(1, %d) AS step WHERE level > 0 GROUP BY step ORDER BY step",
		f.SecondsToConvert, strings.Join(f.Conditions(), ", "), f.Name, len(f.Steps)+1)
}
