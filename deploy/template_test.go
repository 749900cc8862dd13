package deploy

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/awslabs/goformation/v7"
	"github.com/awslabs/goformation/v7/cloudformation"
	"github.com/awslabs/goformation/v7/intrinsics"
	"github.com/hookline/hookline/internal/config"
	"gopkg.in/yaml.v3"
)

// The functions of the stack: logical id -> directory under functions/.
var functions = map[string]string{
	"IngestFunction":    "ingest",
	"SchedulerFunction": "scheduler",
	"DrainFunction":     "drain",
}

// parseTemplate parses template.yaml with goformation once for all tests:
// goformation.Open is not safe for concurrent use (it re-registers its YAML
// tag resolvers in a package-level map on every call).
//
// goformation resolves a Ref to a parameter's Default, as the string it is:
// list parameters whose default is "" are given a sample list instead, as
// sam deploy would pass them.
var parseTemplate = sync.OnceValues(func() (*cloudformation.Template, error) {
	return goformation.OpenWithOptions(templatePath, &intrinsics.ProcessorOptions{
		ParameterOverrides: map[string]any{
			"CacheSubnetIds": []any{"subnet-0123456789abcdef0", "subnet-0fedcba9876543210"},
		},
	})
})

// openTemplate returns template.yaml as goformation parses it, as
// CloudFormation tooling would: it fails on unknown properties of the
// resource types it knows. Callers must not modify it.
func openTemplate(t *testing.T) *cloudformation.Template {
	t.Helper()
	tmpl, err := parseTemplate()
	if err != nil {
		t.Fatalf("goformation.Open(%s): %v", templatePath, err)
	}
	return tmpl
}

func TestTemplateResources(t *testing.T) {
	t.Parallel()
	tmpl := openTemplate(t)
	if tmpl.Transform == nil || tmpl.Transform.String == nil || *tmpl.Transform.String != "AWS::Serverless-2016-10-31" {
		t.Fatalf("Transform: want AWS::Serverless-2016-10-31")
	}
	want := map[string]string{
		"HookApi":                   "AWS::Serverless::HttpApi",
		"IngestFunction":            "AWS::Serverless::Function",
		"SchedulerFunction":         "AWS::Serverless::Function",
		"DrainFunction":             "AWS::Serverless::Function",
		"DrainDeadLetterQueue":      "AWS::SQS::Queue",
		"TickScheduleGroup":         "AWS::Scheduler::ScheduleGroup",
		"TickRole":                  "AWS::IAM::Role",
		"LambdaSecurityGroup":       "AWS::EC2::SecurityGroup",
		"CacheSecurityGroup":        "AWS::EC2::SecurityGroup",
		"CacheIngressFromFunctions": "AWS::EC2::SecurityGroupIngress",
		"EndpointSecurityGroup":     "AWS::EC2::SecurityGroup",
		"LambdaEndpoint":            "AWS::EC2::VPCEndpoint",
		"SecretsManagerEndpoint":    "AWS::EC2::VPCEndpoint",
		"Cache":                     "AWS::ElastiCache::ServerlessCache",
		"CacheAppUser":              "AWS::ElastiCache::User",
		"CacheDefaultUser":          "AWS::ElastiCache::User",
		"CacheUserGroup":            "AWS::ElastiCache::UserGroup",
	}
	for id, typ := range want {
		r, ok := tmpl.Resources[id]
		if !ok {
			t.Fatalf("resource %s: missing", id)
		}
		if got := r.AWSCloudFormationType(); got != typ {
			t.Fatalf("resource %s: type %s, want %s", id, got, typ)
		}
	}
	if got := len(tmpl.GetAllServerlessFunctionResources()); got != len(functions) {
		t.Fatalf("%d AWS::Serverless::Function resources, want %d", got, len(functions))
	}

	// The created cache and its users exist only without an existing cache.
	for _, id := range []string{"Cache", "CacheAppUser", "CacheDefaultUser", "CacheUserGroup", "CacheSecurityGroup", "CacheIngressFromFunctions"} {
		if got, _ := str(get(loadTemplate(t), "Resources", id, "Condition")); got != "CreateCache" {
			t.Fatalf("resource %s: Condition %q, want CreateCache", id, got)
		}
	}
	if _, ok := tmpl.Conditions["CreateCache"]; !ok {
		t.Fatalf("Conditions: CreateCache missing")
	}
}

func TestTemplateFunctions(t *testing.T) {
	t.Parallel()
	tmpl := openTemplate(t)
	root := loadTemplate(t)
	globals, err := tmpl.GetServerlessGlobalFunction()
	if err != nil {
		t.Fatalf("Globals.Function: %v", err)
	}

	for id, dir := range functions {
		fn, err := tmpl.GetServerlessFunctionWithName(id)
		if err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		runtime, handler, arch := fn.Runtime, fn.Handler, fn.Architectures
		if runtime == nil {
			runtime = globals.Runtime
		}
		if handler == nil {
			handler = globals.Handler
		}
		if arch == nil && globals.Architectures != nil {
			arch = *globals.Architectures
		}
		if runtime == nil || *runtime != "provided.al2023" {
			t.Fatalf("%s: Runtime %s, want provided.al2023", id, value(runtime))
		}
		if handler == nil || *handler != "bootstrap" {
			t.Fatalf("%s: Handler %s, want bootstrap", id, value(handler))
		}
		if !slices.Equal(arch, []string{"arm64"}) {
			t.Fatalf("%s: Architectures %v, want [arm64]", id, arch)
		}
		if fn.CodeUri == nil || fn.CodeUri.String == nil || *fn.CodeUri.String != "." {
			t.Fatalf("%s: CodeUri: want . (the module root, one go.mod)", id)
		}
		if got := fn.AWSCloudFormationMetadata["BuildMethod"]; got != "makefile" {
			t.Fatalf("%s: Metadata.BuildMethod %v, want makefile", id, got)
		}
		checkSAMBuildTarget(t, id, dir)
	}

	if got, _ := str(get(root, "Globals", "Function", "LoggingConfig", "LogFormat")); got != "JSON" {
		t.Fatalf("Globals.Function.LoggingConfig.LogFormat %q, want JSON", got)
	}
	if got, _ := str(get(root, "Globals", "Function", "Environment", "Variables", config.EnvConfig)); got != "/var/task/hookline.yaml" {
		t.Fatalf("Globals %s = %q, want /var/task/hookline.yaml (where the build puts hookline.yaml)", config.EnvConfig, got)
	}

	// Events: HTTP API routes on ingest, the one-minute schedule on the
	// scheduler, none on drain (the scheduler invokes it).
	events := func(id string) []entry { return entries(get(root, "Resources", id, "Properties", "Events")) }
	var routes []string
	for _, ev := range events("IngestFunction") {
		if typ, _ := str(get(ev.val, "Type")); typ != "HttpApi" {
			t.Fatalf("IngestFunction event %s: Type %q, want HttpApi", ev.key, typ)
		}
		p := get(ev.val, "Properties")
		if !isRef(get(p, "ApiId"), "HookApi") {
			t.Fatalf("IngestFunction event %s: ApiId %s, want !Ref HookApi", ev.key, describe(get(p, "ApiId")))
		}
		if v, _ := str(get(p, "PayloadFormatVersion")); v != "2.0" {
			t.Fatalf("IngestFunction event %s: PayloadFormatVersion %q, want 2.0", ev.key, v)
		}
		method, _ := str(get(p, "Method"))
		path, _ := str(get(p, "Path"))
		routes = append(routes, strings.ToUpper(method)+" "+path)
	}
	slices.Sort(routes)
	if want := []string{"GET /healthz", "POST /webhooks"}; !slices.Equal(routes, want) {
		t.Fatalf("IngestFunction routes %v, want %v", routes, want)
	}
	sched := events("SchedulerFunction")
	if len(sched) != 1 {
		t.Fatalf("SchedulerFunction: %d events, want 1", len(sched))
	}
	if typ, _ := str(get(sched[0].val, "Type")); typ != "ScheduleV2" {
		t.Fatalf("SchedulerFunction event: Type %q, want ScheduleV2", typ)
	}
	if expr, _ := str(get(sched[0].val, "Properties", "ScheduleExpression")); expr != "rate(1 minute)" {
		t.Fatalf("SchedulerFunction event: ScheduleExpression %q, want rate(1 minute)", expr)
	}
	if ev := events("DrainFunction"); len(ev) != 0 {
		t.Fatalf("DrainFunction: %d events, want none", len(ev))
	}

	// Timeouts: a scheduler run outlives the next minute's tick (130 s), so
	// a standby is always there; ingest answers within API Gateway's 30 s;
	// drain's is a parameter.
	if got, _ := str(get(root, "Resources", "SchedulerFunction", "Properties", "Timeout")); got != "130" {
		t.Fatalf("SchedulerFunction Timeout %q, want 130: each run must outlive the next tick", got)
	}
	if ingest, _ := tmpl.GetServerlessFunctionWithName("IngestFunction"); ingest.Timeout == nil || *ingest.Timeout > 30 {
		t.Fatalf("IngestFunction Timeout: want its own, at most 30 (the HTTP API integration limit)")
	}
	if !isRef(get(root, "Resources", "DrainFunction", "Properties", "Timeout"), "DrainTimeout") {
		t.Fatalf("DrainFunction Timeout: want !Ref DrainTimeout")
	}
	if got := paramDefault(t, root, "DrainTimeout"); got != 120 {
		t.Fatalf("DrainTimeout default %d, want 120", got)
	}

	// LoggingConfig stays in Globals: goformation rejects it on a function.
	for id := range functions {
		if get(root, "Resources", id, "Properties", "LoggingConfig") != nil {
			t.Fatalf("%s: LoggingConfig belongs in Globals.Function", id)
		}
	}
}

// value returns *s, or "<unset>".
func value(s *string) string {
	if s == nil {
		return "<unset>"
	}
	return *s
}

// checkSAMBuildTarget checks that the Makefile has the target sam build runs
// for function id (BuildMethod: makefile runs make build-<LogicalId> with
// ARTIFACTS_DIR set), and that it builds functions/<dir> into ARTIFACTS_DIR.
func checkSAMBuildTarget(t *testing.T, id, dir string) {
	t.Helper()
	artifacts := filepath.Join(t.TempDir(), "artifacts")
	cmd := exec.Command("make", "-n", "build-"+id, "ARTIFACTS_DIR="+artifacts)
	cmd.Dir = ".."
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make -n build-%s: %v\n%s", id, err, out)
	}
	for _, want := range []string{"./functions/" + dir, artifacts + "/bootstrap", artifacts + "/hookline.yaml", "GOARCH=arm64", "lambda.norpc"} {
		if !strings.Contains(string(out), want) {
			t.Fatalf("make -n build-%s does not mention %s:\n%s", id, want, out)
		}
	}
}

func TestTemplateInvokePermission(t *testing.T) {
	t.Parallel()
	if problems := checkInvokePermission(loadTemplate(t), invokeRules); len(problems) > 0 {
		t.Fatalf("lambda:InvokeFunction permissions:\n  %s", strings.Join(problems, "\n  "))
	}
}

// invokeRules are the stack's invoke permissions: the scheduler invokes the
// drain function's live alias, and EventBridge Scheduler (through TickRole)
// the scheduler's.
var invokeRules = []invokeRule{
	{holder: "SchedulerFunction", target: "DrainFunction"},
	{holder: "TickRole", target: "SchedulerFunction"},
}

// TestInvokePermissionCheck shows that checkInvokePermission catches what it
// is meant to catch.
func TestInvokePermissionCheck(t *testing.T) {
	t.Parallel()
	const head = "Resources:\n  DrainFunction: {Type: AWS::Serverless::Function}\n"
	scheduler := func(policies string) string {
		return "  SchedulerFunction:\n    Type: AWS::Serverless::Function\n    Properties:\n      Policies:\n" + policies
	}
	const good = "        - Statement: [{Effect: Allow, Action: lambda:InvokeFunction, Resource: !Ref DrainFunction.Alias}]\n"
	const tickRole = "  TickRole:\n    Type: AWS::IAM::Role\n    Properties:\n      Policies:\n        - PolicyName: p\n          PolicyDocument: {Statement: [{Effect: Allow, Action: lambda:InvokeFunction, Resource: %s}]}\n"
	rules := []invokeRule{{holder: "SchedulerFunction", target: "DrainFunction"}}
	tests := []struct {
		name, template string
		ok             bool
	}{
		{"statement on the drain alias", head + scheduler(good), true},
		{"long-form Ref", head + scheduler("        - Statement: [{Effect: Allow, Action: [lambda:InvokeFunction], Resource: {Ref: DrainFunction.Alias}}]\n"), true},
		{"drain ARN: $LATEST, not the alias", head + scheduler("        - Statement: [{Effect: Allow, Action: lambda:InvokeFunction, Resource: !GetAtt DrainFunction.Arn}]\n"), false},
		{"LambdaInvokePolicy: $LATEST, not the alias", head + scheduler("        - LambdaInvokePolicy: {FunctionName: !Ref DrainFunction}\n"), false},
		{"role of the rules", head + scheduler(good) + fmt.Sprintf(tickRole, "!Ref SchedulerFunction.Alias"), false},
		{"no grant", head + scheduler("        - Statement: [{Effect: Allow, Action: sqs:SendMessage, Resource: '*'}]\n"), false},
		{"wildcard resource", head + scheduler("        - Statement: [{Effect: Allow, Action: lambda:InvokeFunction, Resource: '*'}]\n"), false},
		{"wildcard action on the drain and more", head + scheduler("        - Statement: [{Effect: Allow, Action: 'lambda:*', Resource: [!GetAtt DrainFunction.Arn, !GetAtt Other.Arn]}]\n"), false},
		{"ingest may invoke", head + scheduler(good) +
			"  IngestFunction:\n    Type: AWS::Serverless::Function\n    Properties:\n      Policies: {Statement: [{Effect: Allow, Action: 'lambda:Invoke*', Resource: !GetAtt DrainFunction.Arn}]}\n", false},
		{"invoke in an Fn::If branch", head + scheduler(good) +
			"  IngestFunction:\n    Type: AWS::Serverless::Function\n    Properties:\n      Policies:\n        - !If [C, !Ref AWS::NoValue, {Statement: [{Effect: Allow, Action: '*', Resource: '*'}]}]\n", false},
		{"invoke through a managed policy", head + scheduler(good) +
			"  P:\n    Type: AWS::IAM::ManagedPolicy\n    Properties: {PolicyDocument: {Statement: [{Effect: Allow, Action: lambda:InvokeFunction, Resource: '*'}]}}\n" +
			"  DrainFunction2:\n    Type: AWS::Serverless::Function\n    Properties: {Policies: [!Ref P]}\n", false},
		{"AWS managed Lambda policy", head + scheduler(good) +
			"  IngestFunction:\n    Type: AWS::Serverless::Function\n    Properties: {Policies: [AWSLambdaRole]}\n", false},
		{"a role of its own", head + scheduler(good) +
			"  IngestFunction:\n    Type: AWS::Serverless::Function\n    Properties: {Role: arn:aws:iam::123456789012:role/x}\n", false},
		{"NotAction", head + scheduler("        - Statement: [{Effect: Allow, NotAction: s3:*, Resource: '*'}]\n"+good), false},
	}
	roleRules := append(rules, invokeRule{holder: "TickRole", target: "SchedulerFunction"})
	for _, tt := range []struct {
		name, template string
		ok             bool
	}{
		{"role on the scheduler alias", head + scheduler(good) + fmt.Sprintf(tickRole, "!Ref SchedulerFunction.Alias"), true},
		{"role on the drain alias", head + scheduler(good) + fmt.Sprintf(tickRole, "!Ref DrainFunction.Alias"), false},
		{"role on everything", head + scheduler(good) + fmt.Sprintf(tickRole, "'*'"), false},
		{"no role", head + scheduler(good), false},
	} {
		root := loadYAML(t, tt.name, []byte(tt.template))
		problems := checkInvokePermission(root, roleRules)
		if ok := len(problems) == 0; ok != tt.ok {
			t.Fatalf("%s: ok %v, want %v; problems: %v", tt.name, ok, tt.ok, problems)
		}
	}
	for _, tt := range tests {
		root := loadYAML(t, tt.name, []byte(tt.template))
		problems := checkInvokePermission(root, rules)
		if ok := len(problems) == 0; ok != tt.ok {
			t.Fatalf("%s: ok %v, want %v; problems: %v", tt.name, ok, tt.ok, problems)
		}
	}
}

// TestTemplateDrainAsync checks how Lambda delivers the scheduler's
// asynchronous drain events (item 6 of issue 8): a failed drain event is not
// retried, and an event waits no longer than the claim it carries lives
// (drain.claim_ttl of hookline.yaml), since an older one finds its claim
// lapsed and can only exit, holding concurrency meanwhile. Whatever Lambda
// gives up on goes to the dead-letter queue.
func TestTemplateDrainAsync(t *testing.T) {
	t.Parallel()
	root := loadTemplate(t)
	tmpl := openTemplate(t)
	cfg := loadConfig(t)
	props := get(root, "Resources", "DrainFunction", "Properties")

	eic := get(props, "EventInvokeConfig")
	if !isRef(get(eic, "MaximumRetryAttempts"), "DrainMaxRetries") {
		t.Fatalf("DrainFunction EventInvokeConfig.MaximumRetryAttempts: want !Ref DrainMaxRetries")
	}
	checkParamRange(t, root, "DrainMaxRetries", 0, 2) // Lambda's limits
	if got := paramDefault(t, root, "DrainMaxRetries"); got != 0 {
		t.Fatalf("DrainMaxRetries default %d, want 0: a retry comes after the claim lapsed and only exits", got)
	}
	if !isRef(get(eic, "MaximumEventAgeInSeconds"), "DrainMaxEventAge") {
		t.Fatalf("DrainFunction EventInvokeConfig.MaximumEventAgeInSeconds: want !Ref DrainMaxEventAge")
	}
	checkParamRange(t, root, "DrainMaxEventAge", 60, 21600) // Lambda's limits
	claimTTL := time.Duration(cfg.Drain.ClaimTTL)
	if got := time.Duration(paramDefault(t, root, "DrainMaxEventAge")) * time.Second; got != claimTTL {
		t.Fatalf("DrainMaxEventAge default %v, want drain.claim_ttl of %s (%v): an older event finds its claim lapsed", got, configPath, claimTTL)
	}
	onFailure := get(eic, "DestinationConfig", "OnFailure")
	if typ, _ := str(get(onFailure, "Type")); typ != "SQS" {
		t.Fatalf("DrainFunction OnFailure Type %q, want SQS", typ)
	}
	dest := get(onFailure, "Destination")
	var queue string
	for id := range tmpl.Resources {
		if isGetAtt(dest, id, "Arn") {
			queue = id
		}
	}
	if queue == "" || tmpl.Resources[queue].AWSCloudFormationType() != "AWS::SQS::Queue" {
		t.Fatalf("DrainFunction OnFailure Destination %s: want !GetAtt <an AWS::SQS::Queue of the template>.Arn", describe(dest))
	}
}

func TestTemplateNoPlaintextSecrets(t *testing.T) {
	t.Parallel()
	root := loadTemplate(t)
	secretish := regexp.MustCompile(`(?i)secret|token|password|passwd|credential|api_?key`)
	webhookSecret := regexp.MustCompile(`whsec_[A-Za-z0-9+/=]{8,}`) // "whsec_" and base64

	// A secret-sounding parameter takes an ARN (its pattern refuses
	// anything else), or something else no secret fits (the revision
	// number of the signing secrets), or is at least NoEcho.
	// ("SecretsManager", the service, is no secret.)
	const sampleARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:hookline/signing-AbCdEf"
	for _, p := range entries(get(root, "Parameters")) {
		if !secretish.MatchString(strings.ReplaceAll(p.key, "SecretsManager", "")) {
			continue
		}
		if noEcho, _ := str(get(p.val, "NoEcho")); noEcho == "true" {
			continue
		}
		pattern, _ := str(get(p.val, "AllowedPattern"))
		if pattern == "" {
			t.Fatalf("parameter %s: a secret-sounding parameter must be an ARN (name ending in Arn), or NoEcho, with an AllowedPattern that refuses secrets", p.key)
		}
		re, err := regexp.Compile(pattern)
		if err != nil {
			t.Fatalf("parameter %s: AllowedPattern: %v", p.key, err)
		}
		for _, plain := range []string{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "hunter2hunter2", "arn-ish but not an arn"} {
			if re.MatchString(plain) {
				t.Fatalf("parameter %s: AllowedPattern %q accepts the plain value %q", p.key, pattern, plain)
			}
		}
		if strings.HasSuffix(p.key, "Arn") && !re.MatchString(sampleARN) {
			t.Fatalf("parameter %s: AllowedPattern %q refuses the ARN %q", p.key, pattern, sampleARN)
		}
	}

	// Environment variables hold ARNs at most: names that sound secret end
	// in _ARN or are declared empty (a slot sam local invoke's env.json may
	// fill, such as HOOKLINE_SIGNING_SECRETS), and no value anywhere looks
	// like a webhook secret.
	walk(root, nil, func(path []string, n *yaml.Node) {
		if n.Kind == yaml.ScalarNode && webhookSecret.MatchString(n.Value) {
			t.Fatalf("%s: holds a webhook secret (whsec_...); put it in Secrets Manager", strings.Join(path, "."))
		}
		if len(path) >= 3 && path[len(path)-2] == "Variables" && path[len(path)-3] == "Environment" {
			name := path[len(path)-1]
			if v, ok := str(n); ok && v == "" && !isNoValue(n) {
				return
			}
			if secretish.MatchString(name) && !strings.HasSuffix(name, "_ARN") {
				t.Fatalf("%s: environment variable %s looks secret; pass a Secrets Manager ARN (…_ARN) instead, or declare it empty", strings.Join(path, "."), name)
			}
		}
	})
}

// TestTemplateEnvironment checks the environment contract between the
// template and internal/config: every HOOKLINE_ variable the template sets is
// one the functions read, and the per-function ones go where they belong.
func TestTemplateEnvironment(t *testing.T) {
	t.Parallel()
	root := loadTemplate(t)
	known := map[string]bool{}
	for _, name := range []string{
		config.EnvConfig, config.EnvPrefix, config.EnvRedisURL, config.EnvRedisCluster,
		config.EnvRedisAuth, config.EnvRedisUser, config.EnvRedisCacheName, config.EnvRedisServerless,
		config.EnvRedisTokenARN, config.EnvSigningSecretsARN, config.EnvSigningSecrets, config.EnvDrainFunction,
		config.EnvStack,
	} {
		known[name] = true
	}
	vars := func(n *yaml.Node) map[string]*yaml.Node {
		m := map[string]*yaml.Node{}
		for _, e := range entries(get(n, "Environment", "Variables")) {
			if !known[e.key] {
				t.Fatalf("environment variable %s: not one internal/config reads", e.key)
			}
			m[e.key] = e.val
		}
		return m
	}
	global := vars(get(root, "Globals", "Function"))
	for _, name := range []string{config.EnvConfig, config.EnvRedisURL, config.EnvRedisCluster, config.EnvRedisAuth, config.EnvPrefix} {
		if global[name] == nil {
			t.Fatalf("Globals: %s is not set", name)
		}
	}
	// The Stack dimension of the metrics is the one the alarms and the
	// dashboard select.
	if v := global[config.EnvStack]; !isRef(v, "AWS::StackName") {
		t.Fatalf("Globals: %s = %s, want !Ref AWS::StackName (the Stack dimension the alarms select)", config.EnvStack, describe(v))
	}
	// The key prefix the functions use is the one the cache user may touch.
	if v := global[config.EnvPrefix]; !isRef(v, "KeyPrefix") {
		t.Fatalf("Globals: %s = %s, want !Ref KeyPrefix (the prefix of CacheAppUser's AccessString)", config.EnvPrefix, describe(v))
	}
	for _, name := range []string{config.EnvSigningSecretsARN, config.EnvSigningSecrets, config.EnvDrainFunction} {
		if global[name] != nil {
			t.Fatalf("Globals: %s belongs to one function", name)
		}
	}
	for id := range functions {
		own := vars(get(root, "Resources", id, "Properties"))
		if v := own[config.EnvSigningSecretsARN]; (id == "IngestFunction") != (v != nil) {
			t.Fatalf("%s: %s set: %v; only IngestFunction reads the signing secrets", id, config.EnvSigningSecretsARN, v != nil)
		} else if v != nil && !isRef(v, "SigningSecretArn") {
			t.Fatalf("%s: %s = %s, want !Ref SigningSecretArn", id, config.EnvSigningSecretsARN, describe(v))
		}
		// Declared empty, for sam local invoke's env.json only.
		if v := own[config.EnvSigningSecrets]; (id == "IngestFunction") != (v != nil) {
			t.Fatalf("%s: %s declared: %v; only IngestFunction reads the signing secrets", id, config.EnvSigningSecrets, v != nil)
		} else if s, ok := str(v); v != nil && (!ok || s != "") {
			t.Fatalf("%s: %s = %s, want \"\" (the secrets come from %s; env.json may fill it locally)", id, config.EnvSigningSecrets, describe(v), config.EnvSigningSecretsARN)
		}
		// The drain's live alias, which CodeDeploy shifts: the function's
		// name or ARN would invoke $LATEST, bypassing the rollout.
		if v := own[config.EnvDrainFunction]; (id == "SchedulerFunction") != (v != nil) {
			t.Fatalf("%s: %s set: %v; only SchedulerFunction invokes the drain", id, config.EnvDrainFunction, v != nil)
		} else if v != nil && !isRef(v, "DrainFunction.Alias") {
			t.Fatalf("%s: %s = %s, want !Ref DrainFunction.Alias", id, config.EnvDrainFunction, describe(v))
		}
	}
}

// TestTemplateNetwork checks that the functions can reach what they call
// from the VPC: the cache on its ports, and Lambda (for the scheduler's
// Invoke) and Secrets Manager through interface endpoints.
func TestTemplateNetwork(t *testing.T) {
	t.Parallel()
	root := loadTemplate(t)
	res := get(root, "Resources")

	vpc := get(root, "Globals", "Function", "VpcConfig")
	if sgs := items(get(vpc, "SecurityGroupIds")); len(sgs) != 1 || !isGetAtt(sgs[0], "LambdaSecurityGroup", "GroupId") {
		t.Fatalf("Globals VpcConfig.SecurityGroupIds: want [!GetAtt LambdaSecurityGroup.GroupId]")
	}
	if !isRef(get(vpc, "SubnetIds"), "SubnetIds") {
		t.Fatalf("Globals VpcConfig.SubnetIds: want !Ref SubnetIds")
	}
	if typ, _ := str(get(root, "Parameters", "SubnetIds", "Type")); typ != "List<AWS::EC2::Subnet::Id>" {
		t.Fatalf("parameter SubnetIds: Type %q, want List<AWS::EC2::Subnet::Id>", typ)
	}

	// The cache accepts the functions only, on 6379 and 6380 (Serverless
	// Valkey's read port). The rule is a resource of its own: the retained
	// cache group must not name LambdaSecurityGroup (TestTemplateCacheRetained).
	if n := len(items(get(res, "CacheSecurityGroup", "Properties", "SecurityGroupIngress"))); n != 0 {
		t.Fatalf("CacheSecurityGroup: %d inline ingress rules, want none (CacheIngressFromFunctions holds it)", n)
	}
	var ingress []*yaml.Node
	for _, id := range resourcesOfType(root, "AWS::EC2::SecurityGroupIngress") {
		if p := get(res, id, "Properties"); isGetAtt(get(p, "GroupId"), "CacheSecurityGroup", "GroupId") {
			ingress = append(ingress, p)
		}
	}
	if len(ingress) != 1 {
		t.Fatalf("CacheSecurityGroup: %d ingress rules, want 1", len(ingress))
	}
	if !isGetAtt(get(ingress[0], "SourceSecurityGroupId"), "LambdaSecurityGroup", "GroupId") {
		t.Fatalf("CacheSecurityGroup ingress: want from LambdaSecurityGroup only")
	}
	from, _ := str(get(ingress[0], "FromPort"))
	to, _ := str(get(ingress[0], "ToPort"))
	if from != "6379" || to != "6380" {
		t.Fatalf("CacheSecurityGroup ingress ports %s-%s, want 6379-6380", from, to)
	}
	egress := get(res, "LambdaToCacheEgress", "Properties")
	if !isGetAtt(get(egress, "GroupId"), "LambdaSecurityGroup", "GroupId") || !isGetAtt(get(egress, "DestinationSecurityGroupId"), "CacheSecurityGroup", "GroupId") {
		t.Fatalf("LambdaToCacheEgress: want LambdaSecurityGroup -> CacheSecurityGroup")
	}

	for id, service := range map[string]string{"LambdaEndpoint": "lambda", "SecretsManagerEndpoint": "secretsmanager"} {
		p := get(res, id, "Properties")
		fn, arg, _ := intrinsic(get(p, "ServiceName"))
		if fn != "Fn::Sub" || arg.Value != "com.amazonaws.${AWS::Region}."+service {
			t.Fatalf("%s ServiceName %s, want !Sub com.amazonaws.${AWS::Region}.%s", id, describe(get(p, "ServiceName")), service)
		}
		if typ, _ := str(get(p, "VpcEndpointType")); typ != "Interface" {
			t.Fatalf("%s VpcEndpointType %q, want Interface", id, typ)
		}
		if dns, _ := str(get(p, "PrivateDnsEnabled")); dns != "true" {
			t.Fatalf("%s PrivateDnsEnabled %q, want true (the SDKs use the public names)", id, dns)
		}
	}
}

// TestTemplateEndpoints checks item 1 of issue 8: interface endpoints with
// private DNS answer for the service's public name in the whole VPC, and
// fail to create where the VPC has one already. So they are opt-in (off by
// default), and when created they admit HTTPS from the VPC's CIDR block, not
// only from hookline's functions, so the VPC's other workloads keep reaching
// Lambda and Secrets Manager.
func TestTemplateEndpoints(t *testing.T) {
	t.Parallel()
	root := loadTemplate(t)
	res := get(root, "Resources")

	for param, cond := range map[string]string{"CreateLambdaEndpoint": "CreateLambdaEndpointCond", "CreateSecretsManagerEndpoint": "CreateSecretsManagerEndpointCond"} {
		if def, _ := str(get(root, "Parameters", param, "Default")); def != "false" {
			t.Fatalf("parameter %s: Default %q, want false (opt-in)", param, def)
		}
		fn, arg, _ := intrinsic(get(root, "Conditions", cond))
		if fn != "Fn::Equals" || len(arg.Content) != 2 || !isRef(arg.Content[0], param) || arg.Content[1].Value != "true" {
			t.Fatalf("condition %s: %s, want !Equals [!Ref %s, \"true\"]", cond, describe(get(root, "Conditions", cond)), param)
		}
	}
	for id, cond := range map[string]string{"LambdaEndpoint": "CreateLambdaEndpointCond", "SecretsManagerEndpoint": "CreateSecretsManagerEndpointCond", "EndpointSecurityGroup": "CreateAnyEndpoint"} {
		if got, _ := str(get(res, id, "Condition")); got != cond {
			t.Fatalf("%s: Condition %q, want %s", id, got, cond)
		}
	}
	for _, id := range []string{"LambdaEndpoint", "SecretsManagerEndpoint"} {
		ep, err := openTemplate(t).GetEC2VPCEndpointWithName(id)
		if err != nil || ep.PrivateDnsEnabled == nil || !*ep.PrivateDnsEnabled || ep.VpcEndpointType == nil || *ep.VpcEndpointType != "Interface" {
			t.Fatalf("goformation: %s: want an interface endpoint with private DNS (%v)", id, err)
		}
		sgs := items(get(res, id, "Properties", "SecurityGroupIds"))
		if len(sgs) != 1 || !isGetAtt(sgs[0], "EndpointSecurityGroup", "GroupId") {
			t.Fatalf("%s SecurityGroupIds: want [!GetAtt EndpointSecurityGroup.GroupId]", id)
		}
	}

	// HTTPS from the functions and from EndpointClientCidr, nothing else.
	var fromFunctions, fromCidr bool
	for _, rule := range items(get(res, "EndpointSecurityGroup", "Properties", "SecurityGroupIngress")) {
		from, _ := str(get(rule, "FromPort"))
		to, _ := str(get(rule, "ToPort"))
		if proto, _ := str(get(rule, "IpProtocol")); proto != "tcp" || from != "443" || to != "443" {
			t.Fatalf("EndpointSecurityGroup ingress %s: want tcp 443 only", describe(rule))
		}
		switch {
		case isGetAtt(get(rule, "SourceSecurityGroupId"), "LambdaSecurityGroup", "GroupId"):
			fromFunctions = true
		case isRef(get(rule, "CidrIp"), "EndpointClientCidr"):
			fromCidr = true
		default:
			t.Fatalf("EndpointSecurityGroup ingress %s: want from LambdaSecurityGroup or !Ref EndpointClientCidr", describe(rule))
		}
	}
	if !fromFunctions || !fromCidr {
		t.Fatalf("EndpointSecurityGroup ingress: from the functions %v, from EndpointClientCidr %v; want both", fromFunctions, fromCidr)
	}

	// EndpointClientCidr is a CIDR block, required by a rule when an
	// endpoint is created.
	pattern, _ := str(get(root, "Parameters", "EndpointClientCidr", "AllowedPattern"))
	re, err := regexp.Compile(pattern)
	if err != nil || pattern == "" {
		t.Fatalf("parameter EndpointClientCidr: AllowedPattern %q: %v", pattern, err)
	}
	for v, ok := range map[string]bool{"": true, "10.0.0.0/16": true, "172.31.0.0/16": true, "10.0.0.0": false, "vpc-0123": false, "10.0.0.0/33": false} {
		if re.MatchString(v) != ok {
			t.Fatalf("parameter EndpointClientCidr: AllowedPattern %q accepts %q: %v, want %v", pattern, v, !ok, ok)
		}
	}
	rule := get(root, "Rules", "EndpointSettings")
	var conds []string
	walk(get(rule, "RuleCondition"), nil, func(_ []string, n *yaml.Node) {
		if name, ok := refName(n); ok {
			conds = append(conds, name)
		}
	})
	slices.Sort(conds)
	if !slices.Equal(conds, []string{"CreateLambdaEndpoint", "CreateSecretsManagerEndpoint"}) {
		t.Fatalf("rule EndpointSettings: RuleCondition refers to %v, want CreateLambdaEndpoint and CreateSecretsManagerEndpoint", conds)
	}
	if !assertsNotEmpty(get(rule, "Assertions"), "EndpointClientCidr") {
		t.Fatalf("rule EndpointSettings: want an assertion that EndpointClientCidr is not empty")
	}
}

// assertsNotEmpty reports whether a rule's assertions include
// !Not [!Equals [!Ref param, ""]].
func assertsNotEmpty(assertions *yaml.Node, param string) bool {
	for _, a := range items(assertions) {
		fn, arg, _ := intrinsic(get(a, "Assert"))
		if fn != "Fn::Not" || arg.Kind != yaml.SequenceNode || len(arg.Content) != 1 {
			continue
		}
		fn, arg, _ = intrinsic(arg.Content[0])
		if fn == "Fn::Equals" && len(arg.Content) == 2 && isRef(arg.Content[0], param) && arg.Content[1].Value == "" {
			return true
		}
	}
	return false
}

func TestTemplateOutputs(t *testing.T) {
	t.Parallel()
	root := loadTemplate(t)
	fn, arg, _ := intrinsic(get(root, "Outputs", "WebhookUrl", "Value"))
	if fn != "Fn::Sub" || arg.Value != "https://${HookApi}.execute-api.${AWS::Region}.amazonaws.com/webhooks" {
		t.Fatalf("Outputs.WebhookUrl %s: want the HookApi's /webhooks URL", describe(get(root, "Outputs", "WebhookUrl", "Value")))
	}
	if get(root, "Outputs", "CacheEndpoint", "Value") == nil {
		t.Fatalf("Outputs.CacheEndpoint: missing")
	}
}

// TestTemplateDataAccess checks the other permissions that matter: only
// ingest reads the signing secret, no secret but the configured ones is
// readable, and each function may connect to the cache as its IAM user, and
// to nothing else, when IAM auth is used.
func TestTemplateDataAccess(t *testing.T) {
	t.Parallel()
	root := loadTemplate(t)

	secrets, problems := grantsOf(root, "secretsmanager:GetSecretValue")
	if len(problems) > 0 {
		t.Fatalf("secretsmanager:GetSecretValue permissions:\n  %s", strings.Join(problems, "\n  "))
	}
	signingReaders := map[string]bool{}
	for _, g := range secrets {
		switch {
		case isRef(g.resource, "SigningSecretArn"):
			signingReaders[g.function] = true
		case isRef(g.resource, "ExistingCacheTokenSecretArn"):
		default:
			t.Fatalf("%s: %s may read the secret %s; want only SigningSecretArn or ExistingCacheTokenSecretArn", g.via, g.function, describe(g.resource))
		}
	}
	if len(signingReaders) != 1 || !signingReaders["IngestFunction"] {
		t.Fatalf("functions that may read the signing secret: %v, want IngestFunction only", signingReaders)
	}

	connect, problems := grantsOf(root, "elasticache:Connect")
	if len(problems) > 0 {
		t.Fatalf("elasticache:Connect permissions:\n  %s", strings.Join(problems, "\n  "))
	}
	kinds := map[string]map[string]bool{} // function -> resource kinds it may connect to
	for _, g := range connect {
		fn, arg, _ := intrinsic(g.resource)
		if fn != "Fn::Sub" {
			t.Fatalf("%s: elasticache:Connect on %s, want an ARN built with !Sub", g.via, describe(g.resource))
		}
		arn := arg.Value
		if arg.Kind == yaml.SequenceNode {
			arn = arg.Content[0].Value
		}
		kind := ""
		for _, k := range []string{":serverlesscache:", ":replicationgroup:", ":${Kind}:", ":user:"} {
			if strings.Contains(arn, k) && !strings.HasSuffix(arn, k) && !strings.Contains(arn, "*") {
				kind = strings.Trim(k, ":")
			}
		}
		if kind == "" {
			t.Fatalf("%s: elasticache:Connect on %q, want one named cache or user", g.via, arn)
		}
		if kinds[g.function] == nil {
			kinds[g.function] = map[string]bool{}
		}
		kinds[g.function][kind] = true
	}
	for id := range functions {
		if !kinds[id]["user"] || !(kinds[id]["serverlesscache"] || kinds[id]["${Kind}"]) {
			t.Fatalf("%s: may connect to %v; want the cache and its IAM user", id, kinds[id])
		}
	}
	if got, _ := str(get(root, "Resources", "CacheConnectPolicy", "Condition")); got != "UseIAMAuth" {
		t.Fatalf("CacheConnectPolicy: Condition %q, want UseIAMAuth", got)
	}
}
