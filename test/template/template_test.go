// Package template_test checks template.yaml against what the code relies
// on: the Makefile builds each function's handler from the right package,
// the HTTP API's routes are the router's, the environment is what
// shared/config reads, IAM names only the configured secrets, and cfn-lint
// passes.
package template_test

import (
	"bytes"
	"context"
	"debug/buildinfo"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"productanalytics/internal/samlocal"
	"productanalytics/shared/api"
	"productanalytics/shared/config"
	"productanalytics/shared/cube"
	"productanalytics/shared/warmup"
)

// unusedVariables are config.Variables that template.yaml deliberately does
// not set, each with the reason. None today.
var unusedVariables = map[string]string{}

// sdkVariables are variables template.yaml declares that the AWS SDK reads,
// not shared/config, each with the reason. Each is empty in the template,
// which the SDK takes as unset (TestSDKVariablesChangeNothingDeployed).
var sdkVariables = map[string]string{
	"AWS_ENDPOINT_URL_SECRETS_MANAGER": "sam local's --env-vars file points it at the local stack's Secrets Manager emulator; SAM sets only declared variables",
	"AWS_ENDPOINT_URL_SQS":             "the same for the warm-up queue, in the same emulator",
	"AWS_ENDPOINT_URL_DYNAMODB":        "the same for the table of recently opened projects, in the same emulator",
}

// notDeployed are function packages template.yaml does not deploy yet,
// each with the reason.
var notDeployed = map[string]string{}

// endpointOf is the endpoint each function serves; its main.go passes it to
// app.Lambda (checked by TestFunctionsServeTheirEndpoint).
var endpointOf = map[string]cube.Endpoint{
	"LoadFunction":   cube.Load,
	"DryRunFunction": cube.DryRun,
	"MetaFunction":   cube.Meta,
}

// scheduled are the functions that serve no route: EventBridge or a queue
// invokes them.
var scheduled = map[string]bool{"WarmupFunction": true, "WarmworkerFunction": true}

// packageOf is the Go package a function's bootstrap is built from:
// LoadFunction -> functions/load, DryRunFunction -> functions/dryrun.
func packageOf(id string) string {
	return "functions/" + strings.ToLower(strings.TrimSuffix(id, "Function"))
}

// TestCfnLint runs cfn-lint as CI does. A missing cfn-lint fails the test:
// CI has it, and a skipped lint would pass without checking anything.
func TestCfnLint(t *testing.T) {
	path, err := exec.LookPath("cfn-lint")
	if err != nil {
		t.Fatalf("cfn-lint is not installed (pip install cfn-lint): %v", err)
	}
	cmd := exec.Command(path, "template.yaml")
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Fatalf("cfn-lint template.yaml: %v\n%s", err, out)
	}
}

func TestFunctionsRunTheBootstrapOnArm64(t *testing.T) {
	tpl := loadTemplate(t)
	for _, f := range tpl.functions(t) {
		p := f.Props
		if p.Runtime != "provided.al2023" || p.Handler != "bootstrap" || !slices.Equal(p.Architectures, []string{"arm64"}) {
			t.Errorf("%s: Runtime %q, Handler %q, Architectures %v; want provided.al2023, bootstrap, [arm64]", f.ID, p.Runtime, p.Handler, p.Architectures)
		}
		if p.CodeUri != "." {
			t.Errorf("%s: CodeUri %v, want . (the Makefile is at the root)", f.ID, p.CodeUri)
		}
		if m := tpl.Resources[f.ID].Metadata; m["BuildMethod"] != "makefile" {
			t.Errorf("%s: Metadata.BuildMethod %v, want makefile", f.ID, m["BuildMethod"])
		}
		if p.LoggingConfig["LogFormat"] != "JSON" {
			t.Errorf("%s: LoggingConfig.LogFormat %v, want JSON (the functions log JSON lines)", f.ID, p.LoggingConfig["LogFormat"])
		}
		if _, ok := endpointOf[f.ID]; !ok && !scheduled[f.ID] {
			t.Errorf("%s: neither an API function (endpointOf) nor a scheduled one", f.ID)
		}
	}
}

// TestMakefileBuildsEachFunction runs `make build-<LogicalId>` as `sam build`
// does and checks that the handler lands in ARTIFACTS_DIR, built from the
// function's own package for the template's architecture.
func TestMakefileBuildsEachFunction(t *testing.T) {
	tpl := loadTemplate(t)
	fs := tpl.functions(t)
	makefile, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	// Every build-<LogicalId> target is a function of the template, and
	// every function package is deployed.
	ids := map[string]bool{}
	for _, f := range fs {
		ids[f.ID] = true
	}
	for _, m := range regexp.MustCompile(`(?m)\bbuild-([A-Z][A-Za-z0-9]*)\b`).FindAllSubmatch(makefile, -1) {
		if !ids[string(m[1])] {
			t.Errorf("the Makefile has build-%s, but template.yaml has no such function", m[1])
		}
	}
	dirs, _ := filepath.Glob(filepath.Join(root, "functions", "*", "main.go"))
	for _, d := range dirs {
		pkg := "functions/" + filepath.Base(filepath.Dir(d))
		deployed := slices.ContainsFunc(fs, func(f function) bool { return packageOf(f.ID) == pkg })
		if _, later := notDeployed[pkg]; deployed == later {
			if later {
				t.Errorf("%s is deployed now: remove it from notDeployed", pkg)
			} else {
				t.Errorf("%s is not deployed by any function of template.yaml", pkg)
			}
		}
	}

	for _, f := range fs {
		t.Run(f.ID, func(t *testing.T) {
			artifacts := t.TempDir()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, "make", "--no-print-directory", "build-"+f.ID)
			cmd.Dir = root
			cmd.Env = append(os.Environ(), "ARTIFACTS_DIR="+artifacts)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("make build-%s (as sam build runs it): %v\n%s", f.ID, err, out)
			}
			handler := filepath.Join(artifacts, f.Props.Handler)
			fi, err := os.Stat(handler)
			if err != nil {
				t.Fatalf("the handler is not in ARTIFACTS_DIR: %v", err)
			}
			if fi.Mode()&0o111 == 0 {
				t.Errorf("%s is not executable", handler)
			}
			info, err := buildinfo.ReadFile(handler)
			if err != nil {
				t.Fatalf("%s is not a Go binary: %v", handler, err)
			}
			if want := "productanalytics/" + packageOf(f.ID); info.Path != want {
				t.Errorf("the handler is built from %s, want %s", info.Path, want)
			}
			settings := map[string]string{}
			for _, s := range info.Settings {
				settings[s.Key] = s.Value
			}
			goarch := map[string]string{"arm64": "arm64", "x86_64": "amd64"}[f.Props.Architectures[0]]
			if settings["GOOS"] != "linux" || settings["GOARCH"] != goarch || settings["CGO_ENABLED"] != "0" {
				t.Errorf("built for GOOS=%s GOARCH=%s CGO_ENABLED=%s; want linux, %s, 0", settings["GOOS"], settings["GOARCH"], settings["CGO_ENABLED"], goarch)
			}
			// Without lambda.norpc the binary carries the go1.x runtime's RPC
			// server, which provided.al2023 never uses.
			if !strings.Contains(settings["-tags"], "lambda.norpc") {
				t.Errorf("built with tags %q, want lambda.norpc", settings["-tags"])
			}
		})
	}
}

// TestFunctionsServeTheirEndpoint checks endpointOf against each
// function's main.go.
func TestFunctionsServeTheirEndpoint(t *testing.T) {
	names := map[cube.Endpoint]string{cube.Load: "Load", cube.DryRun: "DryRun", cube.Meta: "Meta"}
	call := regexp.MustCompile(`app\.Lambda\((cube\.\w+)\)`)
	for id, e := range endpointOf {
		src, err := os.ReadFile(filepath.Join(root, packageOf(id), "main.go"))
		if err != nil {
			t.Fatal(err)
		}
		m := call.FindSubmatch(src)
		if m == nil {
			t.Errorf("%s: no app.Lambda(cube.X) call in %s/main.go", id, packageOf(id))
			continue
		}
		if got := string(m[1]); got != "cube."+names[e] {
			t.Errorf("%s: main.go serves %s, want cube.%s", id, got, names[e])
		}
	}
}

// route is one HTTP API route, "METHOD /path/{id}/...".
type route struct{ method, path string }

func (r route) String() string { return r.method + " " + r.path }

// routes returns the HttpApi routes of each function.
func routes(t *testing.T, tpl *template) map[string][]route {
	t.Helper()
	var apis []string
	for id, r := range tpl.Resources {
		if r.Type == "AWS::Serverless::HttpApi" {
			apis = append(apis, id)
		}
	}
	if len(apis) != 1 {
		t.Fatalf("template.yaml has HTTP APIs %v, want exactly one", apis)
	}
	out := map[string][]route{}
	for _, f := range tpl.functions(t) {
		for name, ev := range f.Props.Events {
			if ev.Type != "HttpApi" {
				continue
			}
			p := ev.Properties
			if api, ok := ref(p["ApiId"]); !ok || api != apis[0] {
				t.Errorf("%s.%s: ApiId %v, want !Ref %s (else SAM makes a second, implicit API)", f.ID, name, p["ApiId"], apis[0])
			}
			if p["PayloadFormatVersion"] != "2.0" {
				t.Errorf("%s.%s: PayloadFormatVersion %v, want \"2.0\"", f.ID, name, p["PayloadFormatVersion"])
			}
			ms, _ := p["TimeoutInMillis"].(float64)
			if ms < float64(f.Props.Timeout*1000) || ms > 30000 {
				t.Errorf("%s.%s: TimeoutInMillis %v, want from the function's %d s to HTTP API's 30 s", f.ID, name, p["TimeoutInMillis"], f.Props.Timeout)
			}
			method, _ := p["Method"].(string)
			path, _ := p["Path"].(string)
			out[f.ID] = append(out[f.ID], route{strings.ToUpper(method), path})
		}
		_, api := endpointOf[f.ID]
		if api != (len(out[f.ID]) > 0) {
			t.Errorf("%s: %d HttpApi events; API functions have routes, the others none", f.ID, len(out[f.ID]))
		}
	}
	return out
}

type allowAll struct{}

func (allowAll) CheckProject(context.Context, http.Header, int64) error { return nil }

type fakeCube struct{}

func (fakeCube) Do(context.Context, cube.Request) (*cube.Response, error) {
	return &cube.Response{Body: []byte(`{"results":[]}`)}, nil
}

// serve sends one request through the core's router, as the function
// serving endpoints would answer it (no endpoints: all of them).
func serve(method, path string, endpoints ...cube.Endpoint) int {
	h := api.NewHandler(allowAll{}, fakeCube{}, slog.New(slog.NewTextHandler(io.Discard, nil)), api.Options{Endpoints: endpoints})
	const query = `{"measures":["TrackedEvents.count"]}`
	// A query in the body, and in the query string as a GET carries it.
	body := `{"query":` + query + `,"queryType":"multi"}`
	r := httptest.NewRequest(method, path+"?queryType=multi&query="+url.QueryEscape(query), strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w.Code
}

// TestRoutesAreTheRouters sends every route of the template through the
// core's router, as the function behind it, and every route the router
// serves must be in the template: no orphan either way.
func TestRoutesAreTheRouters(t *testing.T) {
	tpl := loadTemplate(t)
	byFunction := routes(t, tpl)
	inTemplate := map[route]string{}
	for id, rs := range byFunction {
		for _, r := range rs {
			if other, dup := inTemplate[r]; dup {
				t.Errorf("%s is routed to both %s and %s", r, other, id)
			}
			inTemplate[r] = id
			if strings.Count(r.path, "{id}") != 1 {
				t.Errorf("%s: %s does not take the project as {id}", id, r)
				continue
			}
			path := strings.Replace(r.path, "{id}", "1", 1)
			if code := serve(r.method, path, endpointOf[id]); code != http.StatusOK {
				t.Errorf("%s: %s answers %d through the router of the function, want 200", id, r, code)
			}
		}
	}

	// The router's routes: every endpoint, with and without /api/v4, every
	// method it does not refuse.
	for _, e := range []cube.Endpoint{cube.Load, cube.DryRun, cube.Meta} {
		for _, prefix := range []string{"", "/api/v4"} {
			for _, method := range []string{"GET", "POST", "PUT", "PATCH", "DELETE"} {
				path := prefix + "/projects/{id}/product_analytics/request/" + string(e)
				code := serve(method, strings.Replace(path, "{id}", "1", 1))
				if code == http.StatusNotFound || code == http.StatusMethodNotAllowed {
					continue
				}
				r := route{method, path}
				if _, ok := inTemplate[r]; !ok {
					t.Errorf("the router serves %s (%d) but template.yaml has no such route", r, code)
				}
			}
		}
	}
}

// resolver gives a template value as the function would see it, with
// parameters set from defaults and the given values.
type resolver struct {
	values map[string]string
	// physical are the resources' !Ref values.
	physical map[string]string
}

// sampleParameters are what a person sets, in the two ways the template
// allows: an HS256 caller-token secret, or an OIDC issuer's JWKS.
var sampleParameters = map[string]map[string]string{
	"hs256": {
		"CubeApiUrl":           "https://cube.example.com",
		"CubeApiKeySecretArn":  "arn:aws:secretsmanager:eu-west-1:123456789012:secret:product-analytics/cube-api-key-AbCdEf",
		"CallerTokenSecretArn": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:product-analytics/caller-token-key-GhIjKl",
	},
	"gitlab": {
		"CubeApiUrl":          "https://cube.example.com",
		"CubeApiKeySecretArn": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:product-analytics/cube-api-key-AbCdEf",
		"AuthMode":            "gitlab",
		"GitLabUrl":           "https://gitlab.example.com",
	},
	"deployments": {
		"CubeDeployments":      "cube-1=https://cube-1.example.com=arn:aws:secretsmanager:eu-west-1:123456789012:secret:cube-key-1-AbCdEf,cube-2=https://cube-2.example.com=arn:aws:secretsmanager:eu-west-1:123456789012:secret:cube-key-2-GhIjKl",
		"CubeKeySecretArns":    "arn:aws:secretsmanager:eu-west-1:123456789012:secret:cube-key-1-AbCdEf,arn:aws:secretsmanager:eu-west-1:123456789012:secret:cube-key-2-GhIjKl",
		"CubePlacements":       "42=cube-2",
		"CallerTokenSecretArn": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:product-analytics/caller-token-key-GhIjKl",
	},
	"jwks": {
		"CubeApiUrl":          "https://cube.example.com",
		"CubeApiKeySecretArn": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:product-analytics/cube-api-key-AbCdEf",
		"JwksUrl":             "https://gitlab.example.com/oauth/discovery/keys",
		"JwtIssuer":           "https://gitlab.example.com",
		"JwtAudience":         "product-analytics",
	},
}

func newResolver(t *testing.T, tpl *template, set map[string]string) *resolver {
	t.Helper()
	values := map[string]string{}
	for name, p := range tpl.Parameters {
		switch v, ok := set[name]; {
		case ok:
			values[name] = v
		case p.Default != nil:
			values[name] = *p.Default
		default:
			t.Errorf("parameter %s has no default and the sample does not set it", name)
		}
		if p.AllowedPattern != "" {
			re, err := regexp.Compile(p.AllowedPattern)
			if err != nil {
				t.Errorf("parameter %s: AllowedPattern: %v", name, err)
			} else if v, ok := values[name]; ok && !re.MatchString(v) {
				t.Errorf("parameter %s: %q does not match its AllowedPattern", name, v)
			}
		}
		if len(p.AllowedValues) > 0 && !slices.Contains(p.AllowedValues, values[name]) {
			t.Errorf("parameter %s: %q is not among its AllowedValues", name, values[name])
		}
	}
	for name := range set {
		if _, ok := tpl.Parameters[name]; !ok {
			t.Errorf("the sample sets %s, which template.yaml does not declare", name)
		}
	}
	physical := map[string]string{}
	for id, r := range tpl.Resources {
		physical[id] = samplePhysicalID(id, r.Type)
	}
	return &resolver{values: values, physical: physical}
}

// samplePhysicalID is what !Ref of a resource gives in the sample stack:
// a queue's URL, a table's name.
func samplePhysicalID(id, typ string) string {
	name := stackName + "-" + id + "-1A2B3C4D5E6F"
	switch typ {
	case "AWS::SQS::Queue":
		return "https://sqs." + region + ".amazonaws.com/123456789012/" + name + ".fifo"
	}
	return name
}

// TestSamconfigSetsTheTemplatesParameters checks that samconfig.toml's
// overrides name declared parameters and set every one without a default.
func TestSamconfigSetsTheTemplatesParameters(t *testing.T) {
	tpl := loadTemplate(t)
	overrides := samconfigOverrides(t)
	for name := range overrides {
		if _, ok := tpl.Parameters[name]; !ok {
			t.Errorf("samconfig.toml overrides %s, which template.yaml does not declare", name)
		}
	}
	for name, p := range tpl.Parameters {
		if _, ok := overrides[name]; !ok && p.Default == nil {
			t.Errorf("samconfig.toml does not set %s, which has no default", name)
		}
	}
}

// value resolves a literal, a !Ref of a parameter or a pseudo parameter,
// or a !Sub of them, as CloudFormation would for a stack of stackName in
// region.
func (r *resolver) value(v any) (string, bool) {
	switch v := v.(type) {
	case string:
		return v, true
	case int:
		return strconv.Itoa(v), true
	}
	values := map[string]string{"AWS::StackName": stackName, "AWS::Region": region, "AWS::AccountId": "123456789012", "AWS::Partition": "aws", "AWS::URLSuffix": "amazonaws.com"}
	for k, v := range r.physical {
		values[k] = v
	}
	for k, v := range r.values {
		values[k] = v
	}
	return samlocal.Resolve(v, values)
}

// The stack the template tests deploy in their minds.
const (
	stackName = "product-analytics-api"
	region    = "eu-west-1"
)

// samconfigOverrides reads the default environment's parameter_overrides,
// one "Key=Value ..." string, possibly a multi-line one whose lines end in
// a backslash.
func samconfigOverrides(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "samconfig.toml"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?s)\nparameter_overrides\s*=\s*(?:"""(.*?)"""|"([^"\n]*)")`).FindSubmatch(b)
	if m == nil {
		t.Fatal("samconfig.toml has no parameter_overrides string")
	}
	s := string(m[1]) + string(m[2])
	s = regexp.MustCompile(`\\\n\s*`).ReplaceAllString(s, "")
	out := map[string]string{}
	for _, kv := range strings.Fields(s) {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			t.Fatalf("samconfig.toml: parameter override %q is not Key=Value", kv)
		}
		out[k] = v
	}
	return out
}

// TestEnvironmentIsWhatConfigReads checks that each function gets exactly
// the variables shared/config reads, and that, with samconfig.toml's
// parameters, they make a valid configuration.
func TestEnvironmentIsWhatConfigReads(t *testing.T) {
	tpl := loadTemplate(t)
	for v := range unusedVariables {
		if !slices.Contains(config.Variables(), v) {
			t.Errorf("unusedVariables lists %s, which config does not read", v)
		}
	}
	for _, f := range tpl.functions(t) {
		want := map[string]bool{}
		for _, v := range variablesOf(f.ID) {
			if _, unused := unusedVariables[v]; !unused {
				want[v] = true
			}
		}
		vars := f.Props.Environment.Variables
		for v := range want {
			if _, ok := vars[v]; !ok {
				t.Errorf("%s: config reads %s, template.yaml does not set it", f.ID, v)
			}
		}
		for v, val := range vars {
			if _, sdk := sdkVariables[v]; sdk {
				if val != "" {
					t.Errorf("%s: %s is %v; the deployed stack must leave it empty", f.ID, v, val)
				}
				continue
			}
			if !want[v] {
				t.Errorf("%s: template.yaml sets %s, which config does not read", f.ID, v)
			}
		}
	}
	var res *resolver
	for _, sample := range []string{"gitlab", "jwks", "deployments", "hs256"} {
		res = newResolver(t, tpl, sampleParameters[sample])
		for _, f := range tpl.functions(t) {
			env := map[string]string{}
			for v, val := range f.Props.Environment.Variables {
				s, ok := res.value(val)
				if !ok {
					t.Errorf("%s: %s is %v, neither a string nor a !Ref of a parameter", f.ID, v, val)
				}
				env[v] = s
			}
			if _, err := loadConfig(f.ID, env); err != nil {
				t.Errorf("%s, %s parameters: the configuration from the template's environment: %v", f.ID, sample, err)
			}
		}
	}
	for _, f := range tpl.functions(t) {
		env := map[string]string{}
		for v, val := range f.Props.Environment.Variables {
			env[v], _ = res.value(val)
		}
		cfg, err := loadConfig(f.ID, env)
		if err != nil {
			continue // reported above
		}
		if _, api := endpointOf[f.ID]; !api {
			continue // no caller waits on API Gateway for it
		}
		// Continue-wait polling must end, and the answer go out, before the
		// function's timeout ends the invoke.
		if budget := time.Duration(f.Props.Timeout)*time.Second - cfg.CubeWaitDeadline; budget < 2*time.Second {
			t.Errorf("%s: CUBE_WAIT_DEADLINE %s leaves %s of the %d s timeout to answer", f.ID, cfg.CubeWaitDeadline, budget, f.Props.Timeout)
		}
		if f.Props.Timeout > 29 {
			t.Errorf("%s: Timeout %d s outlives API Gateway's 29 s", f.ID, f.Props.Timeout)
		}
	}
	// Every choice the template offers makes a valid configuration.
	for _, f := range tpl.functions(t)[:1] {
		for name, p := range tpl.Parameters {
			for _, allowed := range p.AllowedValues {
				res := res
				for _, sample := range sampleParameters {
					if sample[name] == allowed {
						res = newResolver(t, tpl, sample)
					}
				}
				env := map[string]string{}
				for v, val := range f.Props.Environment.Variables {
					if n, ok := ref(val); ok && n == name {
						env[v] = allowed
					} else {
						env[v], _ = res.value(val)
					}
				}
				if _, err := config.Load(func(k string) string { return env[k] }); err != nil {
					t.Errorf("parameter %s=%s: %v", name, allowed, err)
				}
			}
		}
	}
}

// TestWarmupSchedule checks the warm-up's schedule: always on (the
// projects opened recently are warmed even when none is configured), and
// an input the planner reads as the projects configured.
func TestWarmupSchedule(t *testing.T) {
	tpl := loadTemplate(t)
	var warm *function
	for _, f := range tpl.functions(t) {
		if f.ID == "WarmupFunction" {
			warm = &f
		}
	}
	if warm == nil {
		t.Fatal("template.yaml has no WarmupFunction")
	}
	ev, ok := warm.Props.Events["Schedule"]
	if !ok || ev.Type != "Schedule" {
		t.Fatalf("WarmupFunction events %v; want a Schedule event named Schedule", warm.Props.Events)
	}
	if sched, ok := ref(ev.Properties["Schedule"]); !ok || sched != "WarmupSchedule" {
		t.Errorf("Schedule is %v, want !Ref WarmupSchedule", ev.Properties["Schedule"])
	}
	if enabled, set := ev.Properties["Enabled"]; set && enabled != true {
		t.Errorf("Enabled is %v; the schedule warms the recent projects whatever is configured", enabled)
	}
	sub, _ := ev.Properties["Input"].(map[string]any)["Fn::Sub"].(string)
	for projects, want := range map[string][]int64{"1,2,42": {1, 2, 42}, "": nil} {
		params := maps.Clone(sampleParameters["hs256"])
		params["WarmupProjects"] = projects
		res := newResolver(t, tpl, params)
		input := regexp.MustCompile(`\$\{(\w+)\}`).ReplaceAllStringFunc(sub, func(m string) string {
			return res.values[m[2:len(m)-1]]
		})
		var in warmup.PlanInput
		if err := json.Unmarshal([]byte(input), &in); err != nil {
			t.Fatalf("the schedule's input %s: %v", input, err)
		}
		if !slices.Equal(in.Projects, want) {
			t.Errorf("WarmupProjects %q: the schedule's input reads as %+v", projects, in)
		}
	}
}

// variablesOf is what the configuration of a function reads: the API
// functions serve callers (and the load function marks opened projects);
// the warm-up's planner places projects and sends them to its queue; its
// worker calls Cube.
func variablesOf(id string) []string {
	switch id {
	case "LoadFunction":
		return slices.Concat(config.Variables(), config.RecentVariables(), config.FunnelsVariables())
	case "WarmupFunction":
		return slices.Concat(config.CubeVariables(), config.WarmupPlanVariables())
	case "WarmworkerFunction":
		return slices.Concat(config.CubeVariables(), config.WarmupWorkerVariables())
	}
	return slices.Concat(config.Variables(), config.FunnelsVariables())
}

func loadConfig(id string, env map[string]string) (config.Config, error) {
	getenv := func(k string) string { return env[k] }
	switch id {
	case "LoadFunction":
		if _, err := config.LoadRecent(getenv); err != nil {
			return config.Config{}, err
		}
	case "WarmupFunction":
		c, _, err := config.LoadWarmupPlan(getenv)
		return c, err
	case "WarmworkerFunction":
		c, _, err := config.LoadWarmupWorker(getenv)
		return c, err
	}
	return config.Load(getenv)
}

// grants are the actions each function's code calls, on what: the
// secrets its configuration names, and the warm-up's queue and table.
func grants(id string) map[string]bool {
	want := map[string]bool{}
	if id != "WarmupFunction" { // the planner calls no Cube
		want["secretsmanager:GetSecretValue !Ref CubeApiKeySecretArn"] = true
		want["secretsmanager:GetSecretValue !Ref CubeKeySecretArns"] = true
	}
	switch id {
	case "LoadFunction":
		want["dynamodb:PutItem !GetAtt RecentlyOpenedTable.Arn"] = true
	case "WarmupFunction":
		want["sqs:SendMessage !GetAtt WarmupQueue.Arn"] = true
		want["dynamodb:Scan !GetAtt RecentlyOpenedTable.Arn"] = true
	}
	if _, api := endpointOf[id]; api {
		want["secretsmanager:GetSecretValue !Ref CallerTokenSecretArn"] = true
		// The funnel definitions (config.LoadFunnels): the bucket's
		// prefix, or the GitLab token's secret.
		want["s3:ListBucket !Sub arn:${AWS::Partition}:s3:::${FunnelsBucket}"] = true
		want["s3:ListBucket condition map[StringLike:map[s3:prefix:map[Fn::Sub:${FunnelsPrefix}*]]]"] = true
		want["s3:GetObject !Sub arn:${AWS::Partition}:s3:::${FunnelsBucket}/${FunnelsPrefix}*"] = true
		want["secretsmanager:GetSecretValue !Ref FunnelsGitLabTokenSecretArn"] = true
	}
	return want
}

// TestIAMNamesOnlyWhatTheCodeCalls checks that each function may call
// exactly the actions its code calls, on the secrets its configuration
// names and the warm-up's own queue and table, and nothing else. (SAM adds
// the logs' permissions, and the worker's receive and delete on its
// queue, from the function's event.)
func TestIAMNamesOnlyWhatTheCodeCalls(t *testing.T) {
	tpl := loadTemplate(t)
	if tpl.Globals.Function.Policies != nil || tpl.Globals.Function.Role != nil {
		t.Error("Globals set Policies or Role; set them on each function")
	}
	for _, f := range tpl.functions(t) {
		if f.Props.Role != nil {
			t.Errorf("%s: a Role of its own escapes this check; use Policies", f.ID)
		}
		for _, v := range []string{"CUBE_API_KEY_SECRET_ID", "AUTH_JWT_SECRET_ID"} {
			if f.ID == "WarmupFunction" {
				continue // it declares the deployments to place projects, and reads no key
			}
			if p, ok := ref(f.Props.Environment.Variables[v]); slices.Contains(variablesOf(f.ID), v) && (!ok || !grants(f.ID)["secretsmanager:GetSecretValue !Ref "+p]) {
				t.Errorf("%s: %s is %v, not a !Ref of a secret it may read", f.ID, v, f.Props.Environment.Variables[v])
			}
		}
		got := map[string]bool{}
		for i, pol := range f.Props.Policies {
			for _, g := range policyGrants(t, f.ID, i, pol) {
				got[g] = true
			}
		}
		if want := grants(f.ID); !mapsEqual(got, want) {
			t.Errorf("%s may call %v, want exactly %v", f.ID, keys(got), keys(want))
		}
	}
}

// policyGrants returns "action resource" for each action and resource of a
// policy document, each branch of an !If included (a grant present only
// under a condition is still a grant), failing the test on anything but
// Allow statements of actions on !Ref or !GetAtt values.
func policyGrants(t *testing.T, id string, i int, pol any) []string {
	t.Helper()
	m, ok := pol.(map[string]any)
	stmts, isDoc := m["Statement"].([]any)
	if !ok || !isDoc {
		t.Errorf("%s: policy %d is not a policy document: %v", id, i, pol)
		return nil
	}
	var out []string
	for j, s := range branches(stmts) {
		st, _ := s.(map[string]any)
		keys := len(st)
		if c, ok := st["Condition"]; ok && slices.Contains(list(st["Action"]), any("s3:ListBucket")) {
			// Listing is bounded to the funnels' prefix: the one
			// condition allowed, written into the grant.
			keys--
			out = append(out, fmt.Sprintf("s3:ListBucket condition %v", c))
		}
		if st["Effect"] != "Allow" || keys != 3 {
			t.Errorf("%s: policy %d statement %d: %v; want only Effect: Allow, Action, Resource", id, i, j, st)
			continue
		}
		for _, r := range branches(st["Resource"]) {
			name, isRef := ref(r)
			if att, isAtt := getAtt(r); isAtt {
				name = att
			}
			if m, ok := r.(map[string]any); ok && len(m) == 1 {
				if sub, ok := m["Fn::Sub"].(string); ok {
					for _, a := range list(st["Action"]) {
						out = append(out, fmt.Sprintf("%v !Sub %s", a, sub))
					}
					continue
				}
			}
			if !isRef && name == "" {
				t.Errorf("%s: policy %d statement %d: resource %v is neither a !Ref nor a !GetAtt", id, i, j, r)
				continue
			}
			for _, a := range list(st["Action"]) {
				if isRef {
					out = append(out, fmt.Sprintf("%v !Ref %s", a, name))
				} else {
					out = append(out, fmt.Sprintf("%v !GetAtt %s", a, name))
				}
			}
		}
	}
	return out
}

// branches flattens v: the items of a list, both branches of each !If,
// less AWS::NoValue.
func branches(v any) []any {
	var out []any
	for _, x := range list(v) {
		if m, ok := x.(map[string]any); ok && len(m) == 1 {
			if args, ok := m["Fn::If"].([]any); ok && len(args) == 3 {
				out = append(out, branches(args[1:])...)
				continue
			}
		}
		if name, ok := ref(x); ok && name == "AWS::NoValue" {
			continue
		}
		if l, ok := x.([]any); ok {
			out = append(out, branches(l)...)
			continue
		}
		out = append(out, x)
	}
	return out
}

// getAtt reads !GetAtt R.A as "R.A".
func getAtt(v any) (string, bool) {
	m, ok := v.(map[string]any)
	if !ok || len(m) != 1 {
		return "", false
	}
	args, ok := m["Fn::GetAtt"].([]any)
	if !ok || len(args) != 2 {
		return "", false
	}
	return fmt.Sprintf("%v.%v", args[0], args[1]), true
}

func list(v any) []any {
	if l, ok := v.([]any); ok {
		return l
	}
	return []any{v}
}

func mapsEqual(a, b map[string]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if !b[k] {
			return false
		}
	}
	return true
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func TestOutputsTheAPIURL(t *testing.T) {
	tpl := loadTemplate(t)
	out, ok := tpl.Outputs["ApiUrl"].(map[string]any)
	if !ok {
		t.Fatal("no ApiUrl output")
	}
	sub, _ := out["Value"].(map[string]any)
	s, _ := sub["Fn::Sub"].(string)
	if !strings.HasPrefix(s, "https://${") || !strings.Contains(s, ".execute-api.${AWS::Region}.") {
		t.Errorf("ApiUrl is %v, want https://${Api}.execute-api.${AWS::Region}...", out["Value"])
	}
}
