package template_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// root is the project's root, relative to this package.
const root = "../.."

// template is template.yaml with CloudFormation's short-form tags turned
// into their long form ({"Ref": X}, {"Fn::Sub": X}, ...), as JSON values.
type template struct {
	Parameters map[string]parameter `json:"Parameters"`
	Globals    struct {
		Function functionProps `json:"Function"`
	} `json:"Globals"`
	Conditions map[string]any      `json:"Conditions"`
	Resources  map[string]resource `json:"Resources"`
	Outputs    map[string]any      `json:"Outputs"`
}

type parameter struct {
	Type           string   `json:"Type"`
	Default        *string  `json:"Default"`
	AllowedValues  []string `json:"AllowedValues"`
	AllowedPattern string   `json:"AllowedPattern"`
}

type resource struct {
	Type       string          `json:"Type"`
	Metadata   map[string]any  `json:"Metadata"`
	Properties json.RawMessage `json:"Properties"`
}

// functionProps are the AWS::Serverless::Function properties the code
// relies on; a nil or zero field is one the resource leaves to Globals.
type functionProps struct {
	Runtime       string   `json:"Runtime"`
	Architectures []string `json:"Architectures"`
	Handler       string   `json:"Handler"`
	CodeUri       any      `json:"CodeUri"`
	Timeout       int      `json:"Timeout"`
	Role          any      `json:"Role"`
	Policies      []any    `json:"Policies"`
	Environment   struct {
		Variables map[string]any `json:"Variables"`
	} `json:"Environment"`
	LoggingConfig map[string]any `json:"LoggingConfig"`
	Events        map[string]struct {
		Type       string         `json:"Type"`
		Properties map[string]any `json:"Properties"`
	} `json:"Events"`
}

// function is one AWS::Serverless::Function with Globals applied the way
// SAM applies them: the resource's own value wins, maps are merged.
type function struct {
	ID    string
	Props functionProps
}

func loadTemplate(t *testing.T) *template {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("template.yaml: %v", err)
	}
	v, err := longForm(&doc)
	if err != nil {
		t.Fatalf("template.yaml: %v", err)
	}
	j, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var tpl template
	if err := json.Unmarshal(j, &tpl); err != nil {
		t.Fatalf("template.yaml: %v", err)
	}
	return &tpl
}

// longForm converts a YAML node to a JSON-able value, turning the short
// forms of intrinsic functions (!Ref X, !GetAtt A.B, !Sub s, !If [...])
// into their long forms.
func longForm(n *yaml.Node) (any, error) {
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return nil, nil
		}
		return longForm(n.Content[0])
	case yaml.AliasNode:
		return longForm(n.Alias)
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
		v, err := longForm(&plain)
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
			v, err := longForm(n.Content[i+1])
			if err != nil {
				return nil, err
			}
			m[k] = v
		}
		return m, nil
	case yaml.SequenceNode:
		l := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			v, err := longForm(c)
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

// functions returns the template's functions, sorted by logical ID, with
// Globals applied.
func (tpl *template) functions(t *testing.T) []function {
	t.Helper()
	var fs []function
	for id, r := range tpl.Resources {
		if r.Type != "AWS::Serverless::Function" {
			continue
		}
		var p functionProps
		if err := json.Unmarshal(r.Properties, &p); err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		g := tpl.Globals.Function
		if p.Runtime == "" {
			p.Runtime = g.Runtime
		}
		if p.Architectures == nil {
			p.Architectures = g.Architectures
		}
		if p.Handler == "" {
			p.Handler = g.Handler
		}
		if p.CodeUri == nil {
			p.CodeUri = g.CodeUri
		}
		if p.Timeout == 0 {
			p.Timeout = g.Timeout
		}
		vars := map[string]any{}
		for k, v := range g.Environment.Variables {
			vars[k] = v
		}
		for k, v := range p.Environment.Variables {
			vars[k] = v
		}
		p.Environment.Variables = vars
		logging := map[string]any{}
		for k, v := range g.LoggingConfig {
			logging[k] = v
		}
		for k, v := range p.LoggingConfig {
			logging[k] = v
		}
		p.LoggingConfig = logging
		fs = append(fs, function{ID: id, Props: p})
	}
	sort.Slice(fs, func(i, j int) bool { return fs[i].ID < fs[j].ID })
	if len(fs) == 0 {
		t.Fatal("template.yaml has no AWS::Serverless::Function")
	}
	return fs
}

// ref returns X of {"Ref": X}.
func ref(v any) (string, bool) {
	m, ok := v.(map[string]any)
	if !ok || len(m) != 1 {
		return "", false
	}
	s, ok := m["Ref"].(string)
	return s, ok
}
