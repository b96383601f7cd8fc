package template_test

import (
	"encoding/json"
	"reflect"
	"regexp"
	"testing"

	"productanalytics/internal/stack"
)

// TestCorsParameter checks the CorsAllowOrigins parameter: empty by
// default (no CORS, the API as it always was), and the origins it accepts.
func TestCorsParameter(t *testing.T) {
	tpl := loadTemplate(t)
	p, ok := tpl.Parameters["CorsAllowOrigins"]
	if !ok {
		t.Fatal("template.yaml has no CorsAllowOrigins parameter")
	}
	if p.Default == nil || *p.Default != "" {
		t.Errorf("CorsAllowOrigins defaults to %v, want empty (no CORS)", p.Default)
	}
	re := regexp.MustCompile(p.AllowedPattern)
	tests := []struct {
		value string
		ok    bool
	}{
		{"", true},
		{"*", true},
		{"https://dashboards.example.com", true},
		{"https://dashboards.example.com,http://127.0.0.1:8080", true},
		{"https://d1234.cloudfront.net", true},
		{"https://dashboards.example.com/", false}, // an origin has no path
		{"https://dashboards.example.com/page", false},
		{"dashboards.example.com", false},
		{"https://a.example.com, https://b.example.com", false}, // the space would be part of an origin
		{"*,https://a.example.com", false},
		{"https://*.example.com", false}, // HTTP APIs take no wildcard in a host
	}
	for _, tt := range tests {
		if got := re.MatchString(tt.value); got != tt.ok {
			t.Errorf("CorsAllowOrigins=%q accepted: %v, want %v", tt.value, got, tt.ok)
		}
	}
}

// TestCorsConfiguration checks the HTTP API's CORS: none unless origins are
// given, and then every header and method the dashboards page calls with.
func TestCorsConfiguration(t *testing.T) {
	tpl := loadTemplate(t)
	want := map[string]any{"Fn::Not": []any{map[string]any{"Fn::Equals": []any{map[string]any{"Ref": "CorsAllowOrigins"}, ""}}}}
	if got := tpl.Conditions["HasCors"]; !reflect.DeepEqual(got, want) {
		t.Errorf("condition HasCors is %v, want CorsAllowOrigins not empty", got)
	}
	var props struct {
		CorsConfiguration map[string][]any `json:"CorsConfiguration"`
	}
	if err := json.Unmarshal(tpl.Resources["AnalyticsApi"].Properties, &props); err != nil {
		t.Fatal(err)
	}
	cond := props.CorsConfiguration["Fn::If"]
	if len(cond) != 3 || cond[0] != "HasCors" {
		t.Fatalf("CorsConfiguration is %v; want !If [HasCors, {...}, !Ref AWS::NoValue]", props.CorsConfiguration)
	}
	if name, ok := ref(cond[2]); !ok || name != "AWS::NoValue" {
		t.Errorf("without origins CorsConfiguration is %v, want none (AWS::NoValue)", cond[2])
	}
	b, _ := json.Marshal(cond[1])
	var cors struct {
		AllowOrigins  any
		AllowMethods  []string
		AllowHeaders  []string
		ExposeHeaders []string
		MaxAge        int
	}
	if err := json.Unmarshal(b, &cors); err != nil {
		t.Fatal(err)
	}
	split, _ := cors.AllowOrigins.(map[string]any)["Fn::Split"].([]any)
	if len(split) != 2 || split[0] != "," {
		t.Errorf("AllowOrigins is %v, want !Split [\",\", !Ref CorsAllowOrigins]", cors.AllowOrigins)
	} else if name, ok := ref(split[1]); !ok || name != "CorsAllowOrigins" {
		t.Errorf("AllowOrigins splits %v, want !Ref CorsAllowOrigins", split[1])
	}
	// The local stack emulates this configuration for the browser tests of
	// the exported page, which call the API from another origin.
	got := stack.CORSConfig{AllowMethods: cors.AllowMethods, AllowHeaders: cors.AllowHeaders, ExposeHeaders: cors.ExposeHeaders, MaxAge: cors.MaxAge}
	if !reflect.DeepEqual(got, stack.CORS) {
		t.Errorf("the HTTP API's CORS is %+v; the local stack emulates %+v (internal/stack.CORS), which the browser tests call with", got, stack.CORS)
	}
	if cors.MaxAge <= 0 || cors.MaxAge > 86400 {
		t.Errorf("MaxAge %d: every call would be preceded by a preflight, or past browsers' cap", cors.MaxAge)
	}
}
