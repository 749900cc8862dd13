package deploy

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// cfnLintArgs are cfn-lint's flags here and in `make lint`: it exits
// non-zero on errors and warnings (informational findings are printed).
var cfnLintArgs = []string{"--format", "parseable", "--non-zero-exit-code", "warning"}

// TestCfnLint runs cfn-lint (which applies the SAM transform) on
// template.yaml when it is installed, and fails on any error or warning.
// cfn-lint is a Python tool that CI need not have; without it the test says
// so and skips, as `make lint` does.
func TestCfnLint(t *testing.T) {
	t.Parallel()
	bin, err := exec.LookPath("cfn-lint")
	if err != nil {
		t.Skip("cfn-lint is not installed (pip install cfn-lint): template.yaml is not linted")
	}
	lint := func(path string) (string, error) {
		cmd := exec.CommandContext(t.Context(), bin, append(cfnLintArgs, path)...)
		// cfn-lint needs no AWS credentials; without this, boto's search
		// for them waits on the EC2 metadata service for seconds.
		cmd.Env = append(os.Environ(), "AWS_EC2_METADATA_DISABLED=true")
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := lint(templatePath); err != nil {
		t.Fatalf("cfn-lint %s: %v\n%s", templatePath, err, out)
	}

	// The flags make cfn-lint fail on an error: a function with a runtime
	// Lambda does not have.
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte(`Transform: AWS::Serverless-2016-10-31
Resources:
  F:
    Type: AWS::Serverless::Function
    Properties: {Runtime: go0.1, Handler: bootstrap, CodeUri: s3://b/k.zip}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := lint(bad)
	var exit *exec.ExitError
	if !errors.As(err, &exit) || !strings.Contains(out, "go0.1") {
		t.Fatalf("cfn-lint on a template with an error: %v, want a failure naming it\n%s", err, out)
	}
}

// TestCfnLintIgnoresExplained checks that every cfn-lint rule the template
// ignores (Metadata cfn-lint config ignore_checks, of the template or of a
// resource) is named in the comment above that setting, with its reason.
func TestCfnLintIgnoresExplained(t *testing.T) {
	t.Parallel()
	root := loadTemplate(t)
	check := func(where string, metadata *yaml.Node) {
		key, val := mappingEntry(metadata, "cfn-lint")
		if val == nil {
			return
		}
		for _, rule := range items(get(val, "config", "ignore_checks")) {
			if !strings.Contains(key.HeadComment, rule.Value) {
				t.Fatalf("%s: cfn-lint rule %s is ignored without a comment above cfn-lint: that names it and says why", where, rule.Value)
			}
		}
	}
	check("Metadata", get(root, "Metadata"))
	for _, r := range entries(get(root, "Resources")) {
		check("Resources."+r.key+".Metadata", get(r.val, "Metadata"))
	}
	if key, _ := mappingEntry(get(root, "Metadata"), "cfn-lint"); key == nil || !strings.Contains(key.HeadComment, "W1030") {
		t.Fatalf("Metadata cfn-lint: the comment explaining W1030 is gone (or the check cannot see comments)")
	}
}

// mappingEntry returns the key and value nodes of key in mapping n.
func mappingEntry(n *yaml.Node, key string) (k, v *yaml.Node) {
	n = deref(n)
	if n == nil || n.Kind != yaml.MappingNode {
		return nil, nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i], deref(n.Content[i+1])
		}
	}
	return nil, nil
}
