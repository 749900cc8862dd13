package deploy

import (
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/pelletier/go-toml/v2"
	"gopkg.in/yaml.v3"
)

// samconfigPath holds the SAM CLI's settings, which `make deploy` uses.
const samconfigPath = "../samconfig.toml"

// samconfig is samconfig.toml as SAM CLI reads it: environment -> command
// -> "parameters" -> key -> value.
type samconfig map[string]any

// loadSamconfig parses samconfig.toml.
func loadSamconfig(t *testing.T) samconfig {
	t.Helper()
	data, err := os.ReadFile(samconfigPath)
	if err != nil {
		t.Fatalf("read %s: %v", samconfigPath, err)
	}
	var c samconfig
	if err := toml.Unmarshal(data, &c); err != nil {
		t.Fatalf("%s: not valid TOML: %v", samconfigPath, err)
	}
	return c
}

// params returns the parameters of command (global, deploy, ...) of the
// default environment.
func (c samconfig) params(command string) map[string]any {
	env, _ := c["default"].(map[string]any)
	cmd, _ := env[command].(map[string]any)
	p, _ := cmd["parameters"].(map[string]any)
	return p
}

// knownSamKeys lists, per command section of samconfig.toml, the keys this
// repository uses or documents (SAM CLI takes each command's options, with
// dashes as underscores). A key outside them is most likely misspelt:
// SAM CLI would silently ignore it.
var knownSamKeys = map[string][]string{
	"global":       {"stack_name", "region", "profile"},
	"build":        {"cached", "parallel", "use_container", "build_dir"},
	"validate":     {"lint"},
	"deploy":       {"capabilities", "confirm_changeset", "resolve_s3", "parameter_overrides", "s3_bucket", "s3_prefix", "tags", "fail_on_empty_changeset", "disable_rollback"},
	"local_invoke": {"env_vars", "skip_pull_image", "parameter_overrides", "docker_network"},
	"delete":       {"no_prompts"},
	"logs":         {"tail", "include_traces"},
}

// TestSamconfig checks samconfig.toml (item 4 of issue 8 and the commands
// of docs/DEPLOY.md): valid TOML in SAM CLI's layout, the stack name and the
// region under the global parameters (so sam deploy, sam delete and sam logs
// agree, and once only), a deploy that asks before changing anything, and
// parameter overrides that name template parameters, give every required
// one, and satisfy the template's constraints.
func TestSamconfig(t *testing.T) {
	t.Parallel()
	c := loadSamconfig(t)
	root := loadTemplate(t)

	if v, ok := c["version"].(float64); !ok || v != 0.1 {
		t.Fatalf("%s: version %v, want 0.1", samconfigPath, c["version"])
	}
	for env, v := range c {
		if env == "version" {
			continue
		}
		if env != "default" {
			t.Fatalf("%s: environment [%s]: only [default.*] is used (sam --config-env)", samconfigPath, env)
		}
		for cmd, v := range v.(map[string]any) {
			known, ok := knownSamKeys[cmd]
			if !ok {
				t.Fatalf("%s: [default.%s]: not a command this repository configures", samconfigPath, cmd)
			}
			for key := range v.(map[string]any)["parameters"].(map[string]any) {
				if !slices.Contains(known, key) {
					t.Fatalf("%s: [default.%s.parameters] %s: not a key SAM CLI takes here (or add it to knownSamKeys)", samconfigPath, cmd, key)
				}
			}
		}
	}

	global := c.params("global")
	stack, _ := global["stack_name"].(string)
	region, _ := global["region"].(string)
	if stack == "" || !regexp.MustCompile(`^[a-z]{2}(-gov)?-[a-z]+-[0-9]$`).MatchString(region) {
		t.Fatalf("%s: [default.global.parameters] stack_name %q, region %q: want both (a region such as us-east-1)", samconfigPath, stack, region)
	}
	for cmd := range knownSamKeys {
		if _, ok := c.params(cmd)["region"]; ok && cmd != "global" {
			t.Fatalf("%s: [default.%s.parameters] region: give it once, under [default.global.parameters]", samconfigPath, cmd)
		}
	}

	deploy := c.params("deploy")
	if caps, _ := deploy["capabilities"].(string); !slices.Contains(strings.Fields(caps), "CAPABILITY_IAM") {
		t.Fatalf("%s: deploy capabilities %q, want CAPABILITY_IAM (the stack creates roles)", samconfigPath, caps)
	}
	for _, key := range []string{"confirm_changeset", "resolve_s3"} {
		if v, _ := deploy[key].(bool); !v {
			t.Fatalf("%s: deploy %s %v, want true", samconfigPath, key, deploy[key])
		}
	}

	overrides, err := parseOverrides(fmt.Sprint(deploy["parameter_overrides"]))
	if err != nil {
		t.Fatalf("%s: parameter_overrides: %v", samconfigPath, err)
	}
	for name, value := range overrides {
		if get(root, "Parameters", name) == nil {
			t.Fatalf("%s: parameter_overrides: %s is not a parameter of template.yaml", samconfigPath, name)
		}
		if err := checkParamValue(root, name, value); err != nil {
			t.Fatalf("%s: parameter_overrides: %v", samconfigPath, err)
		}
	}
	for _, p := range entries(get(root, "Parameters")) {
		if get(p.val, "Default") == nil && overrides[p.key] == "" {
			t.Fatalf("%s: parameter_overrides: %s has no default in template.yaml; give it", samconfigPath, p.key)
		}
	}
	// A created cache needs its own subnets (rule CreatedCacheSettings).
	if overrides["ExistingCacheEndpoint"] == "" && overrides["CacheSubnetIds"] == "" {
		t.Fatalf("%s: parameter_overrides: CacheSubnetIds is required when the stack creates the cache", samconfigPath)
	}
	if arn := overrides["SigningSecretArn"]; !strings.Contains(arn, ":secretsmanager:"+region+":") {
		t.Fatalf("%s: SigningSecretArn %q is not in the region %s", samconfigPath, arn, region)
	}
}

// parseOverrides splits SAM CLI's parameter_overrides string: Key=Value
// pairs separated by spaces, a value optionally in double quotes.
func parseOverrides(s string) (map[string]string, error) {
	out := map[string]string{}
	pair := regexp.MustCompile(`^\s*([A-Za-z0-9]+)=("[^"]*"|\S*)`)
	for s = strings.TrimSpace(s); s != ""; s = strings.TrimSpace(s) {
		m := pair.FindStringSubmatch(s)
		if m == nil {
			return nil, fmt.Errorf("%q is not Key=Value", s)
		}
		if _, dup := out[m[1]]; dup {
			return nil, fmt.Errorf("%s given twice", m[1])
		}
		out[m[1]] = strings.Trim(m[2], `"`)
		s = s[len(m[0]):]
	}
	return out, nil
}

// checkParamValue checks value against parameter name's Type,
// AllowedValues, AllowedPattern, MinValue and MaxValue, as CloudFormation
// would.
func checkParamValue(root *yaml.Node, name, value string) error {
	p := get(root, "Parameters", name)
	typ, _ := str(get(p, "Type"))
	values := []string{value}
	if typ == "CommaDelimitedList" || strings.HasPrefix(typ, "List<") {
		values = strings.Split(value, ",")
	}
	idPattern := map[string]string{
		"AWS::EC2::VPC::Id":    `^vpc-[0-9a-f]{8,17}$`,
		"AWS::EC2::Subnet::Id": `^subnet-[0-9a-f]{8,17}$`,
	}
	for _, v := range values {
		if re, ok := idPattern[strings.TrimSuffix(strings.TrimPrefix(typ, "List<"), ">")]; ok && !regexp.MustCompile(re).MatchString(v) {
			return fmt.Errorf("%s=%q: not a %s", name, v, typ)
		}
		if allowed := items(get(p, "AllowedValues")); len(allowed) > 0 && !slices.ContainsFunc(allowed, func(a *yaml.Node) bool { return a.Value == v }) {
			return fmt.Errorf("%s=%q: not one of its AllowedValues", name, v)
		}
		if pattern, ok := str(get(p, "AllowedPattern")); ok && !regexp.MustCompile(pattern).MatchString(v) {
			return fmt.Errorf("%s=%q: does not match its AllowedPattern %s", name, v, pattern)
		}
		if typ == "Number" {
			n, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return fmt.Errorf("%s=%q: not a number", name, v)
			}
			for key, bad := range map[string]func(limit float64) bool{
				"MinValue": func(limit float64) bool { return n < limit },
				"MaxValue": func(limit float64) bool { return n > limit },
			} {
				if s, ok := str(get(p, key)); ok {
					if limit, _ := strconv.ParseFloat(s, 64); bad(limit) {
						return fmt.Errorf("%s=%s: beyond its %s %s", name, v, key, s)
					}
				}
			}
		}
	}
	return nil
}

// TestParseOverrides checks the parameter_overrides parser the test above
// relies on.
func TestParseOverrides(t *testing.T) {
	t.Parallel()
	got, err := parseOverrides(` A=1 B="x y"  C=subnet-a,subnet-b D= `)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"A": "1", "B": "x y", "C": "subnet-a,subnet-b", "D": ""}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("parseOverrides = %v, want %v", got, want)
	}
	for _, bad := range []string{"A", "A=1 A=2", "=1"} {
		if _, err := parseOverrides(bad); err == nil {
			t.Fatalf("parseOverrides(%q): no error", bad)
		}
	}
	root := loadTemplate(t)
	for _, tt := range []struct {
		name, value string
		ok          bool
	}{
		{"DrainMaxRetries", "0", true}, {"DrainMaxRetries", "3", false}, {"DrainMaxRetries", "x", false},
		{"Tracing", "Active", true}, {"Tracing", "On", false},
		{"SubnetIds", "subnet-0123456789abcdef0,subnet-0fedcba9876543210", true}, {"SubnetIds", "subnet-1,sg-1", false},
		{"VpcId", "vpc-0123456789abcdef0", true}, {"VpcId", "vpc0", false},
		{"EndpointClientCidr", "10.0.0.0/16", true}, {"EndpointClientCidr", "10.0.0.0", false},
	} {
		if err := checkParamValue(root, tt.name, tt.value); (err == nil) != tt.ok {
			t.Fatalf("checkParamValue(%s, %q): %v, want ok %v", tt.name, tt.value, err, tt.ok)
		}
	}
}
