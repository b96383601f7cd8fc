package samlocal

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

const testTemplate = `
Parameters:
  Url:
    Type: String
  Level:
    Type: String
    Default: info
Globals:
  Function:
    Timeout: 29
    MemorySize: 256
    Handler: bootstrap
    Environment:
      Variables:
        URL: !Ref Url
        LEVEL: !Ref Level
        NS: !Sub ns/${AWS::StackName}
        FLAG: true
        EMPTY: ""
        ARN: !GetAtt Other.Arn
Resources:
  A:
    Type: AWS::Serverless::Function
    Properties:
      Environment:
        Variables:
          ONLY_A: a
          LEVEL: debug
  B:
    Type: AWS::Serverless::Function
    Properties:
      Timeout: 300
  Other:
    Type: AWS::SNS::Topic
`

func readTestTemplate(t *testing.T) Template {
	t.Helper()
	path := filepath.Join(t.TempDir(), "template.yaml")
	if err := os.WriteFile(path, []byte(testTemplate), 0o644); err != nil {
		t.Fatal(err)
	}
	tpl, err := ReadTemplate(path)
	if err != nil {
		t.Fatal(err)
	}
	return tpl
}

// TestEnvironmentAsSAMGivesIt checks the order SAM CLI applies: the
// template's values (the function's over Globals), resolved with the
// parameters, then the file's Parameters section, then the function's own
// section; variables the template does not declare are never set.
func TestEnvironmentAsSAMGivesIt(t *testing.T) {
	tpl := readTestTemplate(t)
	if got := tpl.Functions(); !slices.Equal(got, []string{"A", "B"}) {
		t.Fatalf("got functions %v, want [A B]", got)
	}
	tests := []struct {
		name string
		id   string
		inv  Invocation
		want map[string]string
	}{
		{"the template alone", "A", Invocation{}, map[string]string{
			"URL": "", "LEVEL": "debug", "NS": "ns/local", "FLAG": "true", "EMPTY": "", "ARN": "", "ONLY_A": "a",
			"AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "defaultkey", "AWS_LAMBDA_FUNCTION_TIMEOUT": "29",
			"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256", "AWS_LAMBDA_FUNCTION_NAME": "A",
		}},
		{"a function's own settings", "B", Invocation{}, map[string]string{
			"LEVEL": "info", "ONLY_A": "<unset>", "AWS_LAMBDA_FUNCTION_TIMEOUT": "300",
		}},
		{"parameter overrides", "B", Invocation{Parameters: map[string]string{"Url": "http://cube", "Level": "warn"}}, map[string]string{
			"URL": "http://cube", "LEVEL": "warn",
		}},
		{"the file's Parameters, for every function", "B", Invocation{EnvVars: EnvFile{AllFunctions: {"URL": "http://file", "EMPTY": "set", "UNDECLARED": "x"}}}, map[string]string{
			"URL": "http://file", "EMPTY": "set", "UNDECLARED": "<unset>",
		}},
		{"a function's section over Parameters", "A", Invocation{
			Parameters: map[string]string{"Url": "http://cube"},
			EnvVars:    EnvFile{AllFunctions: {"LEVEL": "warn", "URL": "http://file"}, "A": {"LEVEL": "error"}, "B": {"URL": "http://b"}},
		}, map[string]string{"LEVEL": "error", "URL": "http://file"}},
		{"--region", "A", Invocation{Region: "eu-west-1"}, map[string]string{"AWS_REGION": "eu-west-1", "AWS_DEFAULT_REGION": "eu-west-1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, err := tpl.Environment(tt.id, tt.inv)
			if err != nil {
				t.Fatal(err)
			}
			for k, want := range tt.want {
				got, ok := env[k]
				if !ok {
					got = "<unset>"
				}
				if got != want {
					t.Errorf("%s: got %q, want %q", k, got, want)
				}
			}
		})
	}
	if _, err := tpl.Environment("Other", Invocation{}); err == nil {
		t.Error("an environment for a resource that is not a function")
	}
}

func TestUndeclared(t *testing.T) {
	tpl := readTestTemplate(t)
	f := EnvFile{AllFunctions: {"URL": "x", "TYPO_URL": "y"}, "A": {"ONLY_A": "b"}, "B": {"ONLY_A": "c"}}
	for id, want := range map[string][]string{"A": {"Parameters.TYPO_URL"}, "B": {"Parameters.TYPO_URL", "B.ONLY_A"}} {
		got, err := tpl.Undeclared(id, f)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("%s: got %v, %v; want %v", id, got, err, want)
		}
	}
}

func TestNewEnvFile(t *testing.T) {
	tpl := readTestTemplate(t)
	got, err := NewEnvFile(tpl, map[string]string{"URL": "http://cube", "ONLY_A": "b"})
	want := EnvFile{AllFunctions: {"URL": "http://cube"}, "A": {"ONLY_A": "b"}}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, %v; want %v", got, err, want)
	}
	for _, id := range tpl.Functions() {
		if u, err := tpl.Undeclared(id, got); err != nil || len(u) > 0 {
			t.Errorf("%s: undeclared %v, %v", id, u, err)
		}
	}
	if _, err := NewEnvFile(tpl, map[string]string{"NOWHERE": "x"}); err == nil {
		t.Error("a variable no function declares was accepted")
	}
}

func TestEnvFileRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "env.json")
	f := EnvFile{AllFunctions: {"CUBE_API_URL": "http://host.docker.internal:4000"}, "LoadFunction": {"LOG_LEVEL": "debug"}}
	if err := f.Write(path); err != nil {
		t.Fatal(err)
	}
	got, err := ReadEnvFile(path)
	if err != nil || !reflect.DeepEqual(got, f) {
		t.Fatalf("got %v, %v; want %v", got, err, f)
	}
	for _, bad := range []string{`[]`, `{"Parameters": "x"}`, `{"Parameters": {"A": "1"}, "LoadFunction": [1]}`} {
		if err := os.WriteFile(path, []byte(bad), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := ReadEnvFile(path); err == nil {
			t.Errorf("%s: accepted, want refused as SAM CLI refuses it", bad)
		}
	}
}

func TestCommands(t *testing.T) {
	for _, addHost := range []bool{false, true} {
		cmds := Commands(".local/sam-env.json", addHost, 3001)
		if cmds[0] != "sam build" {
			t.Errorf("first command %q, want sam build", cmds[0])
		}
		for _, c := range cmds[1:] {
			if !strings.Contains(c, "--env-vars .local/sam-env.json --region "+Region) {
				t.Errorf("%q lacks the env file and region", c)
			}
			if got := strings.Contains(c, "--add-host host.docker.internal:host-gateway"); got != addHost {
				t.Errorf("%q: --add-host %v, want %v", c, got, addHost)
			}
		}
		if !strings.Contains(cmds[len(cmds)-1], "start-api --port 3001") {
			t.Errorf("last command %q, want start-api on 3001", cmds[len(cmds)-1])
		}
	}
}
