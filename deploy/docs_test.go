package deploy

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// The documents whose commands are checked: docs/DEPLOY.md walks a new user
// through a deployment, README.md's deploy section summarises it.
const (
	deployDocPath = "../docs/DEPLOY.md"
	readmePath    = "../README.md"
)

// readDoc returns a document's text.
func readDoc(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return string(data)
}

// codeBlocks returns the fenced code blocks of a Markdown text with the
// language of each ("sh", "json", "" ...).
func codeBlocks(md string) (blocks []struct{ lang, text string }) {
	fence := regexp.MustCompile("(?ms)^```([a-z]*)\n(.*?)^```")
	for _, m := range fence.FindAllStringSubmatch(md, -1) {
		blocks = append(blocks, struct{ lang, text string }{m[1], m[2]})
	}
	return blocks
}

// commands returns the shell commands a document shows: lines of its code
// blocks (continuations joined) and inline code spans, starting with
// prefix ("make ", "sam ", ...).
func commands(md, prefix string) []string {
	var out []string
	for _, b := range codeBlocks(md) {
		if b.lang != "sh" && b.lang != "" {
			continue
		}
		for _, line := range strings.Split(strings.ReplaceAll(b.text, "\\\n", " "), "\n") {
			line = strings.TrimSpace(line)
			if i := strings.Index(line, " #"); i >= 0 {
				line = strings.TrimSpace(line[:i])
			}
			if strings.HasPrefix(line, prefix) {
				out = append(out, line)
			}
		}
	}
	for _, m := range regexp.MustCompile("`([^`\n]+)`").FindAllStringSubmatch(md, -1) {
		if strings.HasPrefix(m[1], prefix) {
			out = append(out, m[1])
		}
	}
	return out
}

// TestDocsMakeTargets checks that every `make <target>` DEPLOY.md and
// README.md show is a target of the Makefile (make -n runs nothing).
func TestDocsMakeTargets(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for _, path := range []string{deployDocPath, readmePath} {
		for _, c := range commands(readDoc(t, path), "make ") {
			target := strings.Fields(c)[1]
			if strings.ContainsAny(target, "<|") || seen[target] {
				continue // make invoke/<fn>: a pattern, not a target
			}
			seen[target] = true
			cmd := exec.CommandContext(t.Context(), "make", "-n", target)
			cmd.Dir = ".."
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("%s: `%s`: make -n %s: %v\n%s", path, c, target, err, out)
			}
		}
	}
	for _, want := range []string{"deploy", "deploy-check", "lint", "invoke/ingest", "invoke/scheduler", "invoke/drain"} {
		if !seen[want] {
			t.Fatalf("the docs no longer show make %s", want)
		}
	}
}

// TestMakeDeployChecksFirst checks item 11 of issue 8 on the Makefile:
// `make deploy` runs the deploy tests and `hookline check` of hookline.yaml
// before sam build and sam deploy; `make lint` runs cfn-lint when present
// and says so when not; `make invoke/<fn>` passes env.json when it exists.
func TestMakeDeployChecksFirst(t *testing.T) {
	t.Parallel()
	dry := func(args ...string) string {
		cmd := exec.CommandContext(t.Context(), "make", append([]string{"-n"}, args...)...)
		cmd.Dir = ".."
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("make -n %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	out := dry("deploy")
	var order []int
	for _, step := range []string{"go test -count=1 ./deploy/...", "go run ./cmd/hookline check --config hookline.yaml", "sam build", "sam deploy"} {
		i := strings.Index(out, step)
		if i < 0 {
			t.Fatalf("make -n deploy does not run %q:\n%s", step, out)
		}
		order = append(order, i)
	}
	if !slices.IsSorted(order) {
		t.Fatalf("make -n deploy: want the tests and hookline check before sam build and sam deploy:\n%s", out)
	}

	lint := dry("lint")
	if !strings.Contains(lint, "cfn-lint") || !strings.Contains(lint, "not found") || !strings.Contains(lint, "--non-zero-exit-code warning") {
		t.Fatalf("make -n lint: want cfn-lint when installed (failing on warnings) and a message when not:\n%s", lint)
	}

	env := filepath.Join(t.TempDir(), "env.json")
	if out := dry("invoke/ingest", "ENV_JSON="+env); strings.Contains(out, "--env-vars") {
		t.Fatalf("make -n invoke/ingest without %s: passes --env-vars:\n%s", env, out)
	}
	if err := os.WriteFile(env, []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, fn := range []string{"ingest", "scheduler", "drain"} {
		if out := dry("invoke/"+fn, "ENV_JSON="+env); !strings.Contains(out, "--env-vars "+env) {
			t.Fatalf("make -n invoke/%s with %s: want --env-vars %s:\n%s", fn, env, env, out)
		}
	}
}

// TestDocsEnvJSON checks item 4 of issue 8: every variable of DEPLOY.md's
// env.json example is declared for its function in template.yaml (SAM CLI
// only overrides declared variables: an undeclared HOOKLINE_SIGNING_SECRETS
// made `make invoke/ingest` fail at init).
func TestDocsEnvJSON(t *testing.T) {
	t.Parallel()
	root := loadTemplate(t)
	found := 0
	for _, b := range codeBlocks(readDoc(t, deployDocPath)) {
		if b.lang != "json" {
			continue
		}
		var env map[string]map[string]string
		if err := json.Unmarshal([]byte(b.text), &env); err != nil {
			t.Fatalf("%s: a json block is not an env.json (function -> variables): %v\n%s", deployDocPath, err, b.text)
		}
		found++
		for fn, vars := range env {
			if _, ok := functions[fn]; !ok {
				t.Fatalf("%s: env.json: %s is not a function of template.yaml", deployDocPath, fn)
			}
			declared := map[string]bool{}
			for _, n := range []*yaml.Node{get(root, "Globals", "Function"), get(root, "Resources", fn, "Properties")} {
				for _, e := range entries(get(n, "Environment", "Variables")) {
					declared[e.key] = true
				}
			}
			for name := range vars {
				if !declared[name] {
					t.Fatalf("%s: env.json sets %s for %s, which template.yaml does not declare for it: SAM CLI would ignore it", deployDocPath, name, fn)
				}
			}
		}
	}
	if found != 1 {
		t.Fatalf("%s: %d env.json examples, want 1", deployDocPath, found)
	}
}

// TestDocsMatchTemplate checks that DEPLOY.md names every parameter and
// output of the template, that its parameter table gives the template's
// defaults, that the cache user's access string it shows is the template's,
// and that the names in its commands (stack, cache, users, log groups,
// functions, events, event codes) are those the template, samconfig.toml
// and hookline.yaml give.
func TestDocsMatchTemplate(t *testing.T) {
	t.Parallel()
	doc := readDoc(t, deployDocPath)
	readme := readDoc(t, readmePath)
	root := loadTemplate(t)
	cfg := loadConfig(t)
	stack, _ := loadSamconfig(t).params("global")["stack_name"].(string)

	for _, p := range entries(get(root, "Parameters")) {
		if !strings.Contains(doc, "`"+p.key+"`") {
			t.Fatalf("%s: parameter %s is not described", deployDocPath, p.key)
		}
	}
	for _, o := range entries(get(root, "Outputs")) {
		if !strings.Contains(doc, "`"+o.key+"`") {
			t.Fatalf("%s: output %s is not named", deployDocPath, o.key)
		}
	}

	// The parameter table, in the section "### Parameters":
	// | `A`, `B` | a, b | ... |
	_, table, _ := strings.Cut(doc, "\n### Parameters\n")
	table, _, _ = strings.Cut(table, "\n#")
	row := regexp.MustCompile("(?m)^\\| (`[A-Za-z]+`(?:, `[A-Za-z]+`)*) \\| ([^|]*) \\|")
	rows := 0
	for _, m := range row.FindAllStringSubmatch(table, -1) {
		names := strings.Split(strings.ReplaceAll(m[1], "`", ""), ", ")
		defaults := strings.Split(strings.TrimSpace(m[2]), ", ")
		if get(root, "Parameters", names[0]) == nil || len(defaults) != len(names) {
			continue // another table
		}
		rows++
		for i, name := range names {
			want, has := str(get(root, "Parameters", name, "Default"))
			got := defaults[i]
			switch {
			case strings.HasPrefix(got, "(required"):
				if has && want != "" {
					t.Fatalf("%s: %s is documented as required, but its default is %q", deployDocPath, name, want)
				}
			case got == "empty":
				if !has || want != "" {
					t.Fatalf("%s: %s is documented as empty by default, template: %q", deployDocPath, name, want)
				}
			case got != want:
				t.Fatalf("%s: %s is documented with default %q, template: %q", deployDocPath, name, got, want)
			}
		}
	}
	if rows < 15 {
		t.Fatalf("%s: found %d rows of the parameter table, want it whole", deployDocPath, rows)
	}

	// The access string, with the default KeyPrefix.
	prefix, _ := str(get(root, "Parameters", "KeyPrefix", "Default"))
	access := strings.ReplaceAll(appUserAccess(t), "${KeyPrefix}", prefix)
	if !strings.Contains(doc, "\n"+access+"\n") {
		t.Fatalf("%s: does not show the cache user's access string as template.yaml has it:\n%s", deployDocPath, access)
	}

	// Names in commands.
	cache, _ := str(get(root, "Parameters", "CacheName", "Default"))
	names := map[string][]string{
		"--stack-name":            {stack},
		"--serverless-cache-name": {cache},
		"--user-group-id":         {cache + "-users"},
		"--user-id":               {cache + "-app", cache + "-default"},
	}
	for flag, want := range names {
		re := regexp.MustCompile(regexp.QuoteMeta(flag) + ` (\S+)`)
		for _, m := range re.FindAllStringSubmatch(doc+readme, -1) {
			if !slices.Contains(want, m[1]) {
				t.Fatalf("docs: %s %s, want one of %v", flag, m[1], want)
			}
		}
	}
	groups := map[string]bool{"/aws/apigateway/" + stack + "-webhooks": true}
	for _, dir := range functions {
		groups["/aws/lambda/"+stack+"-"+dir] = true
	}
	for _, m := range regexp.MustCompile(`/aws/(?:lambda|apigateway)/[a-z0-9-]+`).FindAllString(doc, -1) {
		if !groups[m] {
			t.Fatalf("%s: log group %s is not one of the stack's (%v)", deployDocPath, m, groups)
		}
	}
	for _, c := range append(commands(doc, "sam local invoke "), commands(readme, "sam local invoke ")...) {
		f := strings.Fields(c)
		if _, ok := functions[f[3]]; !ok {
			t.Fatalf("docs: `%s`: %s is not a function", c, f[3])
		}
		if i := slices.Index(f, "-e"); i > 0 {
			if _, err := os.Stat(filepath.Join("..", f[i+1])); err != nil {
				t.Fatalf("docs: `%s`: %v", c, err)
			}
		}
	}
	for _, c := range append(commands(doc, "sam logs "), commands(doc, "sam logs")...) {
		if m := regexp.MustCompile(`-n (\S+)`).FindStringSubmatch(c); m != nil {
			if _, ok := functions[m[1]]; !ok {
				t.Fatalf("%s: `%s`: %s is not a function", deployDocPath, c, m[1])
			}
		}
	}
	sends := 0
	for _, c := range commands(strings.ReplaceAll(doc, `HOOKLINE_SIGNING_SECRETS="$SECRET" `, ""), "go run ./cmd/hookline send") {
		sends++
		m := regexp.MustCompile(`--codes (\S+)`).FindStringSubmatch(c)
		if m == nil {
			m = []string{"", "post.create"} // the sender's default
		}
		for _, code := range strings.Split(m[1], ",") {
			if _, ok := cfg.Routes[code]; !ok {
				t.Fatalf("%s: `%s`: %s has no route in %s", deployDocPath, c, code, configPath)
			}
		}
	}
	if sends == 0 || !strings.Contains(doc, "hookline check") {
		t.Fatalf("%s: want the first signed webhook (hookline send) and hookline check", deployDocPath)
	}
	for _, section := range []string{"[default.global.parameters]", "[default.deploy.parameters]"} {
		if !strings.Contains(doc, section) {
			t.Fatalf("%s: does not say where settings go (%s)", deployDocPath, section)
		}
	}
	if !strings.Contains(readme, "docs/DEPLOY.md") {
		t.Fatalf("%s: the deploy section no longer points to docs/DEPLOY.md", readmePath)
	}
}
