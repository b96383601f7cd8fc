package samlocal

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
)

// AllFunctions is the key of an --env-vars file whose variables apply to
// every function (SAM CLI reads it as a CloudFormation parameter file).
const AllFunctions = "Parameters"

// EnvFile is the JSON of `sam local invoke --env-vars`: variables for
// every function under AllFunctions, and per function under its logical
// id, which win over them. SAM CLI sets only the variables a function's
// template environment declares; it ignores the others.
type EnvFile map[string]map[string]string

// NewEnvFile returns the --env-vars file that sets vars for every function
// of t that declares them: a variable every function declares goes under
// AllFunctions, any other under each function that declares it, so that
// the file sets nothing SAM CLI would drop. A variable no function
// declares is an error.
func NewEnvFile(t Template, vars map[string]string) (EnvFile, error) {
	f := EnvFile{}
	ids := t.Functions()
	declared := map[string]map[string]any{}
	for _, id := range ids {
		v, err := t.Variables(id)
		if err != nil {
			return nil, err
		}
		declared[id] = v
	}
	for _, name := range sortedKeys(vars) {
		var by []string
		for _, id := range ids {
			if _, ok := declared[id][name]; ok {
				by = append(by, id)
			}
		}
		switch {
		case len(by) == 0:
			return nil, fmt.Errorf("no function of the template declares %s: sam local would drop it", name)
		case len(by) == len(ids):
			by = []string{AllFunctions}
		}
		for _, section := range by {
			if f[section] == nil {
				f[section] = map[string]string{}
			}
			f[section][name] = vars[name]
		}
	}
	return f, nil
}

// ReadEnvFile reads an --env-vars file, refusing what SAM CLI refuses: a
// value that is not an object of variables.
func ReadEnvFile(path string) (EnvFile, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("%s is not a JSON object: %w", path, err)
	}
	f := EnvFile{}
	for k, v := range raw {
		var vars map[string]any
		if err := json.Unmarshal(v, &vars); err != nil || vars == nil {
			return nil, fmt.Errorf("%s: %q is not an object of variables", path, k)
		}
		f[k] = map[string]string{}
		for name, val := range vars {
			f[k][name] = scalar(val)
		}
	}
	return f, nil
}

// Write writes the file, readable by SAM CLI, creating its folder. It goes
// through a scratch file so that a reader never sees half of it.
func (f EnvFile) Write(path string) error {
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// Region is the region the local stack's Secrets Manager emulator keeps its
// secrets in: the `sam local` commands pass it as --region, which SAM CLI
// gives the function as AWS_REGION.
const Region = "us-east-1"

// Invocation is how `sam local` is run for a function.
type Invocation struct {
	// Parameters are --parameter-overrides.
	Parameters map[string]string
	// EnvVars is the --env-vars file.
	EnvVars EnvFile
	// Region is --region (SAM CLI's default: us-east-1).
	Region string
}

// Environment returns the environment SAM CLI gives function id: its own
// AWS_* variables (AWS_SAM_LOCAL, the region, placeholder credentials when
// none are configured, the function's name), then each variable the
// template declares for the function, resolved with the parameters,
// overridden by the --env-vars file's AllFunctions section and then by the
// function's own section. SAM CLI also lets a variable of the shell's
// environment with a declared name override the template's value; that is
// left out here, so that tests never depend on their caller's environment.
func (t Template) Environment(id string, inv Invocation) (map[string]string, error) {
	declared, err := t.Variables(id)
	if err != nil {
		return nil, err
	}
	region := inv.Region
	if region == "" {
		region = "us-east-1"
	}
	fn := mapOf(mapOf(mapOf(t["Resources"])[id])["Properties"])
	global := mapOf(mapOf(t["Globals"])["Function"])
	setting := func(name string, def string) string {
		if v, ok := fn[name]; ok {
			return scalar(v)
		}
		if v, ok := global[name]; ok {
			return scalar(v)
		}
		return def
	}
	env := map[string]string{
		"AWS_SAM_LOCAL":                   "true",
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": setting("MemorySize", "128"),
		"AWS_LAMBDA_FUNCTION_TIMEOUT":     setting("Timeout", "3"),
		"AWS_LAMBDA_FUNCTION_HANDLER":     setting("Handler", ""),
		"AWS_LAMBDA_FUNCTION_NAME":        id,
		"AWS_LAMBDA_FUNCTION_VERSION":     "$LATEST",
		"AWS_LAMBDA_LOG_GROUP_NAME":       "aws/lambda/" + id,
		"AWS_LAMBDA_LOG_STREAM_NAME":      "$LATEST",
		"AWS_REGION":                      region,
		"AWS_DEFAULT_REGION":              region,
		"AWS_ACCESS_KEY_ID":               "defaultkey",
		"AWS_SECRET_ACCESS_KEY":           "defaultsecret",
		"AWS_ACCOUNT_ID":                  "123456789012",
	}
	params := t.Parameters(inv.Parameters)
	overrides := map[string]string{}
	for k, v := range inv.EnvVars[AllFunctions] {
		overrides[k] = v
	}
	for k, v := range inv.EnvVars[id] {
		overrides[k] = v
	}
	for _, name := range sortedKeys(declared) {
		v, _ := Resolve(declared[name], params)
		if o, ok := overrides[name]; ok {
			v = o
		}
		env[name] = v
	}
	return env, nil
}

// Undeclared returns the variables f sets for function id that its template
// environment does not declare: SAM CLI would silently drop them.
func (t Template) Undeclared(id string, f EnvFile) ([]string, error) {
	declared, err := t.Variables(id)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, section := range []string{AllFunctions, id} {
		for _, k := range sortedKeys(f[section]) {
			if _, ok := declared[k]; !ok {
				out = append(out, section+"."+k)
			}
		}
	}
	return out, nil
}

// Commands are the `sam` commands that run the functions against the
// local stack, given the --env-vars file's path; with addHost they map
// host.docker.internal to the host, as Linux's Docker needs.
func Commands(envFile string, addHost bool, apiPort int) []string {
	flags := "--env-vars " + envFile + " --region " + Region
	if addHost {
		flags += " --add-host host.docker.internal:host-gateway"
	}
	return []string{
		"sam build",
		"sam local invoke LoadFunction -e events/load-v2.json " + flags,
		"sam local invoke WarmupFunction -e events/warmup.json " + flags,
		"sam local start-api --port " + strconv.Itoa(apiPort) + " " + flags,
	}
}

// EnvFileName is where `make run` writes the --env-vars file, under the
// project's root.
const EnvFileName = ".local/sam-env.json"
