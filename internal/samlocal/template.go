// Package samlocal does what the AWS SAM CLI does with template.yaml when
// it runs a function locally (`sam local invoke`, `sam local start-api`):
// it reads the template, and gives each function the environment SAM CLI
// gives it, from the template and an --env-vars file. With it, the tests
// run the real bootstraps exactly as `sam local` would against the local
// stack, without SAM CLI or Docker; and `make run` writes that file.
package samlocal

import (
	"fmt"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Template is template.yaml as JSON-like values, CloudFormation's short
// tags in their long form (!Ref X is {"Ref": X}, !Sub s is {"Fn::Sub": s}).
type Template map[string]any

// ReadTemplate reads a SAM template.
func ReadTemplate(path string) (Template, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	v, err := LongForm(&doc)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%s is not a mapping", path)
	}
	return Template(m), nil
}

// LongForm converts a YAML node to a JSON-able value, turning the short
// forms of intrinsic functions (!Ref X, !GetAtt A.B, !Sub s, !If [...])
// into their long forms.
func LongForm(n *yaml.Node) (any, error) {
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return nil, nil
		}
		return LongForm(n.Content[0])
	case yaml.AliasNode:
		return LongForm(n.Alias)
	}
	if tag := n.Tag; strings.HasPrefix(tag, "!") && !strings.HasPrefix(tag, "!!") {
		name := tag[1:]
		switch {
		case name == "Ref" || name == "Condition":
			return map[string]any{name: n.Value}, nil
		case name == "GetAtt" && n.Kind == yaml.ScalarNode:
			res, attr, ok := strings.Cut(n.Value, ".")
			if !ok {
				return nil, fmt.Errorf("line %d: !GetAtt %q is not Resource.Attribute", n.Line, n.Value)
			}
			return map[string]any{"Fn::GetAtt": []any{res, attr}}, nil
		}
		plain := *n
		plain.Tag = ""
		v, err := LongForm(&plain)
		if err != nil {
			return nil, err
		}
		return map[string]any{"Fn::" + name: v}, nil
	}
	switch n.Kind {
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i].Value
			if _, dup := m[k]; dup {
				return nil, fmt.Errorf("line %d: key %q appears twice", n.Content[i].Line, k)
			}
			v, err := LongForm(n.Content[i+1])
			if err != nil {
				return nil, err
			}
			m[k] = v
		}
		return m, nil
	case yaml.SequenceNode:
		l := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			v, err := LongForm(c)
			if err != nil {
				return nil, err
			}
			l = append(l, v)
		}
		return l, nil
	default:
		var v any
		if err := n.Decode(&v); err != nil {
			return nil, fmt.Errorf("line %d: %w", n.Line, err)
		}
		return v, nil
	}
}

// Functions returns the logical ids of the template's functions, sorted.
func (t Template) Functions() []string {
	var ids []string
	for id, r := range mapOf(t["Resources"]) {
		if mapOf(r)["Type"] == "AWS::Serverless::Function" {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return ids
}

// Variables returns a function's environment as the template declares it,
// Globals merged under the function's own, the values as written.
func (t Template) Variables(id string) (map[string]any, error) {
	r := mapOf(mapOf(t["Resources"])[id])
	if r["Type"] != "AWS::Serverless::Function" {
		return nil, fmt.Errorf("template.yaml has no function %s", id)
	}
	vars := map[string]any{}
	global := mapOf(mapOf(mapOf(t["Globals"])["Function"])["Environment"])["Variables"]
	own := mapOf(mapOf(mapOf(r["Properties"])["Environment"])["Variables"])
	for k, v := range mapOf(global) {
		vars[k] = v
	}
	for k, v := range own {
		vars[k] = v
	}
	return vars, nil
}

// PseudoParameters are the values SAM CLI gives AWS::StackName and the
// like when it runs a function locally (its IntrinsicsSymbolTable's
// defaults).
func PseudoParameters() map[string]string {
	return map[string]string{
		"AWS::AccountId": "123456789012",
		"AWS::Partition": "aws",
		"AWS::Region":    "us-east-1",
		"AWS::StackName": "local",
		"AWS::StackId":   "arn:aws:cloudformation:us-east-1:123456789012:stack/local/51af3dc0-da77-11e4-872e-1234567db123",
		"AWS::URLSuffix": "localhost",
	}
}

// Parameters returns the values SAM CLI resolves !Ref and !Sub with: the
// pseudo parameters, the parameters' defaults, then overrides (as
// --parameter-overrides). A parameter without a default that is not
// overridden has no value.
func (t Template) Parameters(overrides map[string]string) map[string]string {
	values := PseudoParameters()
	for name, p := range mapOf(t["Parameters"]) {
		if d, ok := mapOf(p)["Default"]; ok {
			values[name] = scalar(d)
		}
	}
	for k, v := range overrides {
		values[k] = v
	}
	return values
}

var subVariable = regexp.MustCompile(`\$\{([^}!]+)\}`)

// Resolve gives a template value as SAM CLI gives it to a local function:
// literals as text (true as "true"), !Ref and !Sub of known parameters
// resolved, and anything it cannot resolve (another intrinsic, a parameter
// without a value) blank. ok is false in that last case.
func Resolve(v any, params map[string]string) (value string, ok bool) {
	switch v := v.(type) {
	case nil:
		return "", false
	case map[string]any:
		if len(v) != 1 {
			return "", false
		}
		if name, isRef := v["Ref"].(string); isRef {
			s, known := params[name]
			return s, known
		}
		if sub, isSub := v["Fn::Sub"].(string); isSub {
			ok = true
			out := subVariable.ReplaceAllStringFunc(sub, func(m string) string {
				s, known := params[m[2:len(m)-1]]
				ok = ok && known
				return s
			})
			if !ok {
				return "", false
			}
			return out, true
		}
		return "", false
	case []any:
		return "", false
	}
	return scalar(v), true
}

// scalar writes a YAML scalar as SAM CLI's environment does: booleans in
// lower case, numbers as written.
func scalar(v any) string {
	switch v := v.(type) {
	case bool:
		return strconv.FormatBool(v)
	case string:
		return v
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	return fmt.Sprint(v)
}

func mapOf(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

// sortedKeys returns m's keys, sorted.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
