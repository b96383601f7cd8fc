package template_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"gopkg.in/yaml.v3"

	"productanalytics/internal/samlocal"
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
	Condition  string          `json:"Condition"`
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
	Tracing       string   `json:"Tracing"`
	Role          any      `json:"Role"`
	// ReservedConcurrentExecutions is the function's own only.
	ReservedConcurrentExecutions any   `json:"ReservedConcurrentExecutions"`
	Policies                     []any `json:"Policies"`
	Environment                  struct {
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
	v, err := samlocal.LongForm(&doc)
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
		if p.Tracing == "" {
			p.Tracing = g.Tracing
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
