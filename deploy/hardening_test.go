package deploy

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// This file holds the template tests of issue 8 ("production hardening on
// AWS") that have no older test to join: the retained cache, reserved
// concurrency, the schedule's role, the rollout and the logs.

// retained reports whether resource id is kept by CloudFormation when the
// stack is deleted and when an update replaces it.
func retained(root *yaml.Node, id string) bool {
	del, _ := str(get(root, "Resources", id, "DeletionPolicy"))
	repl, _ := str(get(root, "Resources", id, "UpdateReplacePolicy"))
	return del == "Retain" && repl == "Retain"
}

// TestTemplateCacheRetained checks item 3 of issue 8: the cache holds every
// queued webhook, so CloudFormation never deletes or replaces it (Retain on
// deletion and on replacement), it takes daily snapshots kept for days, and
// its create-only properties (name, subnets) come from parameters of their
// own, so that no change to the functions' network replaces it.
func TestTemplateCacheRetained(t *testing.T) {
	t.Parallel()
	root := loadTemplate(t)
	tmpl := openTemplate(t)
	if !retained(root, "Cache") {
		t.Fatalf("Cache: want DeletionPolicy and UpdateReplacePolicy Retain: deleting or replacing it loses every queued webhook")
	}
	props := get(root, "Resources", "Cache", "Properties")
	for prop, param := range map[string]string{
		"ServerlessCacheName":    "CacheName",
		"SubnetIds":              "CacheSubnetIds",
		"DailySnapshotTime":      "CacheSnapshotTime",
		"SnapshotRetentionLimit": "CacheSnapshotRetentionDays",
	} {
		if !isRef(get(props, prop), param) {
			t.Fatalf("Cache %s %s, want !Ref %s", prop, describe(get(props, prop)), param)
		}
	}
	// goformation sees the same, with the parameters' defaults.
	cache, err := tmpl.GetElastiCacheServerlessCacheWithName("Cache")
	if err != nil {
		t.Fatalf("goformation: %v", err)
	}
	if cache.DailySnapshotTime == nil || cache.SnapshotRetentionLimit == nil || *cache.SnapshotRetentionLimit < 1 || len(cache.SubnetIds) == 0 {
		t.Fatalf("goformation: Cache DailySnapshotTime %v, SnapshotRetentionLimit %v, SubnetIds %v: want a snapshot time, at least 1 day of snapshots, subnets", cache.DailySnapshotTime, cache.SnapshotRetentionLimit, cache.SubnetIds)
	}
	checkParamRange(t, root, "CacheSnapshotRetentionDays", 1, 35) // 0 would turn snapshots off
	if got := paramDefault(t, root, "CacheSnapshotRetentionDays"); got < 1 {
		t.Fatalf("CacheSnapshotRetentionDays default %d, want at least 1", got)
	}
	pattern, _ := str(get(root, "Parameters", "CacheSnapshotTime", "AllowedPattern"))
	re, err := regexp.Compile(pattern)
	if err != nil || pattern == "" {
		t.Fatalf("parameter CacheSnapshotTime: AllowedPattern %q: %v", pattern, err)
	}
	for v, ok := range map[string]bool{"04:00": true, "00:00": true, "23:59": true, "4:00": false, "24:00": false, "04:60": false, "": false} {
		if re.MatchString(v) != ok {
			t.Fatalf("parameter CacheSnapshotTime: AllowedPattern %q accepts %q: %v, want %v", pattern, v, !ok, ok)
		}
	}

	// The cache's subnets are its own: nothing else uses CacheSubnetIds,
	// and a rule requires them when the stack creates the cache.
	walk(get(root, "Resources"), nil, func(path []string, n *yaml.Node) {
		if isRef(n, "CacheSubnetIds") && (len(path) < 1 || path[0] != "Cache") {
			t.Fatalf("%s: refers to CacheSubnetIds, which is the cache's alone", strings.Join(path, "."))
		}
	})
	if typ, _ := str(get(root, "Parameters", "CacheSubnetIds", "Type")); typ != "CommaDelimitedList" {
		t.Fatalf("parameter CacheSubnetIds: Type %q, want CommaDelimitedList (empty allowed when an existing cache is used)", typ)
	}
	rule := get(root, "Rules", "CreatedCacheSettings")
	if fn, arg, _ := intrinsic(get(rule, "RuleCondition")); fn != "Fn::Equals" || !isRef(arg.Content[0], "ExistingCacheEndpoint") {
		t.Fatalf("rule CreatedCacheSettings: RuleCondition %s, want !Equals [!Ref ExistingCacheEndpoint, \"\"]", describe(get(rule, "RuleCondition")))
	}
	found := false
	for _, a := range items(get(rule, "Assertions")) {
		if describe(get(a, "Assert")) == `!Not [!Contains [!Ref CacheSubnetIds, ""]]` {
			found = true
		}
	}
	if !found {
		t.Fatalf("rule CreatedCacheSettings: want the assertion !Not [!Contains [!Ref CacheSubnetIds, \"\"]]")
	}

	// What a retained resource refers to must be retained too: deleting the
	// cache's users, user group or security group while the cache uses them
	// would fail the stack's deletion (and the security group must not name
	// one the stack deletes). A dynamic reference {{resolve:...}} is read at
	// deployment only and does not count.
	for _, id := range []string{"Cache", "CacheUserGroup", "CacheAppUser", "CacheDefaultUser", "CacheSecurityGroup"} {
		if !retained(root, id) {
			t.Fatalf("%s: want DeletionPolicy and UpdateReplacePolicy Retain, as the cache it serves", id)
		}
	}
	for _, r := range entries(get(root, "Resources")) {
		if !retained(root, r.key) {
			continue
		}
		for _, dep := range resourceRefs(root, r.val) {
			if !retained(root, dep) {
				t.Fatalf("%s is retained but refers to %s, which the stack deletes", r.key, dep)
			}
		}
	}
}

// resourceRefs returns the logical ids of the template's resources that n
// refers to: Ref, GetAtt, Sub variables and DependsOn; not within a dynamic
// reference ({{resolve:...}}).
func resourceRefs(root, n *yaml.Node) []string {
	var ids []string
	add := func(id string) {
		id, _, _ = strings.Cut(id, ".")
		if get(root, "Resources", id) != nil && !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	dynamic := regexp.MustCompile(`\{\{resolve:[^}]*\}\}`)
	variable := regexp.MustCompile(`\$\{([^}!]+)\}`)
	for _, d := range items(get(n, "DependsOn")) {
		add(d.Value)
	}
	walk(get(n, "Properties"), nil, func(_ []string, n *yaml.Node) {
		fn, arg, ok := intrinsic(n)
		if !ok {
			return
		}
		switch fn {
		case "Ref":
			add(arg.Value)
		case "Fn::GetAtt":
			if arg.Kind == yaml.SequenceNode && len(arg.Content) > 0 {
				add(arg.Content[0].Value)
			} else {
				add(arg.Value)
			}
		case "Fn::Sub":
			s := arg.Value
			if arg.Kind == yaml.SequenceNode && len(arg.Content) > 0 {
				s = arg.Content[0].Value
			}
			for _, m := range variable.FindAllStringSubmatch(dynamic.ReplaceAllString(s, ""), -1) {
				add(m[1])
			}
		}
	})
	return ids
}

// reservation describes a function's reserved concurrency parameter.
type reservation struct{ function, param, condition string }

// TestTemplateReservedConcurrency checks item 2 of issue 8 and the template
// half of item 5: reserved concurrency is a parameter per function where 0
// means no reservation (the property is left out: any reservation must
// leave 100 of the account's concurrency unreserved, which accounts with a
// low quota cannot), the drain reserves nothing by default, and the
// scheduler reserves enough by default for one tick to overlap the next, so
// that a burst of ingest or drain invocations never throttles it.
func TestTemplateReservedConcurrency(t *testing.T) {
	t.Parallel()
	root := loadTemplate(t)
	for _, r := range []reservation{
		{"SchedulerFunction", "SchedulerReservedConcurrency", "ReserveSchedulerConcurrency"},
		{"DrainFunction", "DrainReservedConcurrency", "ReserveDrainConcurrency"},
	} {
		prop := get(root, "Resources", r.function, "Properties", "ReservedConcurrentExecutions")
		fn, arg, _ := intrinsic(prop)
		if fn != "Fn::If" || len(arg.Content) != 3 || arg.Content[0].Value != r.condition || !isRef(arg.Content[1], r.param) || !isNoValue(arg.Content[2]) {
			t.Fatalf("%s ReservedConcurrentExecutions %s, want !If [%s, !Ref %s, !Ref AWS::NoValue]", r.function, describe(prop), r.condition, r.param)
		}
		if got := describe(get(root, "Conditions", r.condition)); got != `!Not [!Equals [!Ref `+r.param+`, "0"]]` {
			t.Fatalf("condition %s: %s, want !Not [!Equals [!Ref %s, \"0\"]]", r.condition, got, r.param)
		}
		if min, _ := str(get(root, "Parameters", r.param, "MinValue")); min != "0" {
			t.Fatalf("parameter %s: MinValue %q, want 0 (no reservation)", r.param, min)
		}
	}
	if got := paramDefault(t, root, "SchedulerReservedConcurrency"); got < 3 {
		t.Fatalf("SchedulerReservedConcurrency default %d, want at least 3: 130 s runs ticked every minute overlap three at a time", got)
	}
	if got := paramDefault(t, root, "DrainReservedConcurrency"); got != 0 {
		t.Fatalf("DrainReservedConcurrency default %d, want 0: a first deployment must not depend on the account's quota", got)
	}
	if get(root, "Resources", "IngestFunction", "Properties", "ReservedConcurrentExecutions") != nil {
		t.Fatalf("IngestFunction: reserved concurrency would cap webhooks at it; it uses the unreserved pool")
	}
}

// TestTemplateScheduleRole checks item 10 of issue 8: EventBridge Scheduler
// assumes a role of the template that trusts scheduler.amazonaws.com only
// for this account (aws:SourceAccount) and this stack's schedule group
// (aws:SourceArn: EventBridge Scheduler sets it to the schedule group's
// ARN, never to a schedule's), and may only invoke the scheduler's alias
// (TestTemplateInvokePermission).
func TestTemplateScheduleRole(t *testing.T) {
	t.Parallel()
	root := loadTemplate(t)
	tick := get(root, "Resources", "SchedulerFunction", "Properties", "Events", "Tick", "Properties")
	if !isGetAtt(get(tick, "RoleArn"), "TickRole", "Arn") {
		t.Fatalf("SchedulerFunction Tick RoleArn %s, want !GetAtt TickRole.Arn (SAM's generated role has no conditions)", describe(get(tick, "RoleArn")))
	}
	if !isRef(get(tick, "GroupName"), "TickScheduleGroup") {
		t.Fatalf("SchedulerFunction Tick GroupName %s, want !Ref TickScheduleGroup", describe(get(tick, "GroupName")))
	}
	for _, role := range resourcesOfType(root, "AWS::IAM::Role") {
		checkServiceTrust(t, root, role)
	}
	// goformation resolves AWS::AccountId to its sample account.
	role, err := openTemplate(t).GetIAMRoleWithName("TickRole")
	if err != nil {
		t.Fatalf("goformation: TickRole: %v", err)
	}
	if got := fmt.Sprint(role.AssumeRolePolicyDocument); !strings.Contains(got, "aws:SourceAccount:123456789012") || !strings.Contains(got, "Service:scheduler.amazonaws.com") {
		t.Fatalf("goformation: TickRole trust %s: want scheduler.amazonaws.com for the stack's account", got)
	}
	if roles := resourcesOfType(root, "AWS::IAM::Role"); !slices.Equal(roles, []string{"TickRole"}) {
		t.Fatalf("IAM roles of the template: %v, want [TickRole] (the functions' roles are SAM's)", roles)
	}
	if get(root, "Resources", "TickRole", "Properties", "ManagedPolicyArns") != nil {
		t.Fatalf("TickRole: no managed policies; its one inline policy invokes the scheduler")
	}
	checkServiceTrust(t, loadYAML(t, "sample", []byte(`Resources:
  TickScheduleGroup: {Type: AWS::Scheduler::ScheduleGroup}
  TickRole:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument:
        Statement:
          - Effect: Allow
            Principal: {Service: scheduler.amazonaws.com}
            Action: sts:AssumeRole
            Condition:
              StringEquals: {aws:SourceAccount: !Ref AWS::AccountId}
              ArnEquals: {aws:SourceArn: !GetAtt TickScheduleGroup.Arn}
`)), "TickRole")
}

// checkServiceTrust checks that role trusts exactly one AWS service, for
// this account and one schedule group of the template only.
func checkServiceTrust(t *testing.T, root *yaml.Node, role string) {
	t.Helper()
	sts := items(get(root, "Resources", role, "Properties", "AssumeRolePolicyDocument", "Statement"))
	if len(sts) != 1 {
		t.Fatalf("%s: %d trust statements, want 1", role, len(sts))
	}
	st := sts[0]
	if effect, _ := str(get(st, "Effect")); effect != "Allow" {
		t.Fatalf("%s trust: Effect %q, want Allow", role, effect)
	}
	if action, _ := str(get(st, "Action")); action != "sts:AssumeRole" {
		t.Fatalf("%s trust: Action %s, want sts:AssumeRole", role, describe(get(st, "Action")))
	}
	principal := get(st, "Principal")
	if len(entries(principal)) != 1 || len(items(get(principal, "Service"))) != 1 {
		t.Fatalf("%s trust: Principal %s, want one service", role, describe(principal))
	}
	if svc, _ := str(items(get(principal, "Service"))[0]); svc != "scheduler.amazonaws.com" {
		t.Fatalf("%s trust: service %q, want scheduler.amazonaws.com", role, svc)
	}
	cond := get(st, "Condition")
	if !isRef(get(cond, "StringEquals", "aws:SourceAccount"), "AWS::AccountId") {
		t.Fatalf("%s trust: want Condition StringEquals aws:SourceAccount: !Ref AWS::AccountId", role)
	}
	arn := get(cond, "ArnEquals", "aws:SourceArn")
	if arn == nil {
		arn = get(cond, "ArnLike", "aws:SourceArn")
	}
	if !isGetAtt(arn, "TickScheduleGroup", "Arn") || resourceType(root, "TickScheduleGroup") != "AWS::Scheduler::ScheduleGroup" {
		t.Fatalf("%s trust: aws:SourceArn %s, want !GetAtt TickScheduleGroup.Arn (a schedule group of the template)", role, describe(arn))
	}
}

// TestTemplateRollout checks item 11 of issue 8 on the template: every
// function publishes a version on any change and is invoked through its
// live alias, which CodeDeploy shifts by a canary or linear
// DeploymentPreference (a parameter) and rolls back when RollbackAlarm goes
// off. (`make deploy` running the tests first is TestMakeDeployChecksFirst.)
func TestTemplateRollout(t *testing.T) {
	t.Parallel()
	root := loadTemplate(t)
	fn := get(root, "Globals", "Function")
	if alias, _ := str(get(fn, "AutoPublishAlias")); alias != "live" {
		t.Fatalf("Globals AutoPublishAlias %q, want live", alias)
	}
	if all, _ := str(get(fn, "AutoPublishAliasAllProperties")); all != "true" {
		t.Fatalf("Globals AutoPublishAliasAllProperties %q, want true: otherwise a change of timeout or network publishes no version and the alias keeps the old one", all)
	}
	pref := get(fn, "DeploymentPreference")
	if !isRef(get(pref, "Type"), "DeploymentType") {
		t.Fatalf("Globals DeploymentPreference.Type %s, want !Ref DeploymentType", describe(get(pref, "Type")))
	}
	alarms := get(pref, "Alarms")
	f, arg, _ := intrinsic(alarms)
	if ok := f == "Fn::If" && len(arg.Content) == 3 && arg.Content[0].Value == "HasRollbackAlarm"; !ok ||
		arg.Content[1].Kind != yaml.SequenceNode || len(arg.Content[1].Content) != 1 || !isRef(arg.Content[1].Content[0], "RollbackAlarm") ||
		arg.Content[2].Kind != yaml.SequenceNode || len(arg.Content[2].Content) != 1 || !isNoValue(arg.Content[2].Content[0]) {
		t.Fatalf("Globals DeploymentPreference.Alarms %s, want !If [HasRollbackAlarm, [!Ref RollbackAlarm], [!Ref AWS::NoValue]] (SAM takes a literal list or an Fn::If of two)", describe(alarms))
	}
	if get(pref, "Enabled") != nil {
		t.Fatalf("Globals DeploymentPreference.Enabled: leave it out (enabled)")
	}
	if got := describe(get(root, "Conditions", "HasRollbackAlarm")); got != `!Not [!Equals [!Ref RollbackAlarm, ""]]` {
		t.Fatalf("condition HasRollbackAlarm: %s", got)
	}
	def, _ := str(get(root, "Parameters", "DeploymentType", "Default"))
	if !strings.HasPrefix(def, "Canary") && !strings.HasPrefix(def, "Linear") {
		t.Fatalf("DeploymentType default %q, want a canary or linear deployment", def)
	}
	// goformation, resolving the parameters' defaults, sees the same.
	g, err := openTemplate(t).GetServerlessGlobalFunction()
	if err != nil {
		t.Fatalf("goformation: Globals.Function: %v", err)
	}
	if g.AutoPublishAlias == nil || *g.AutoPublishAlias != "live" || g.DeploymentPreference == nil || g.DeploymentPreference.Type == nil || *g.DeploymentPreference.Type != def {
		t.Fatalf("goformation: Globals.Function AutoPublishAlias %v, DeploymentPreference %+v; want live and %s", g.AutoPublishAlias, g.DeploymentPreference, def)
	}
	allowed := items(get(root, "Parameters", "DeploymentType", "AllowedValues"))
	valid := regexp.MustCompile(`^(Canary10Percent(5|10|15|30)Minutes|Linear10PercentEvery(1|2|3|10)Minutes?|AllAtOnce)$`)
	for _, v := range allowed {
		if !valid.MatchString(v.Value) {
			t.Fatalf("DeploymentType: %q is not a CodeDeploy Lambda deployment configuration SAM knows", v.Value)
		}
	}
	for id := range functions {
		props := get(root, "Resources", id, "Properties")
		for _, k := range []string{"AutoPublishAlias", "AutoPublishAliasAllProperties", "DeploymentPreference"} {
			if get(props, k) != nil {
				t.Fatalf("%s: %s is set in Globals.Function; a function of its own would bypass the rollout", id, k)
			}
		}
	}
}

// TestTemplateLogsAndTracing checks item 13 of issue 8 on the template:
// JSON logs without the platform's START, END and REPORT lines
// (SystemLogLevel WARN), and X-Ray tracing as a parameter, off by default.
func TestTemplateLogsAndTracing(t *testing.T) {
	t.Parallel()
	root := loadTemplate(t)
	fn := get(root, "Globals", "Function")
	if lvl, _ := str(get(fn, "LoggingConfig", "SystemLogLevel")); lvl != "WARN" {
		t.Fatalf("Globals LoggingConfig.SystemLogLevel %q, want WARN", lvl)
	}
	if !isRef(get(fn, "Tracing"), "Tracing") {
		t.Fatalf("Globals Tracing %s, want !Ref Tracing", describe(get(fn, "Tracing")))
	}
	if def, _ := str(get(root, "Parameters", "Tracing", "Default")); def != "Disabled" {
		t.Fatalf("parameter Tracing: Default %q, want Disabled", def)
	}
	if g, err := openTemplate(t).GetServerlessGlobalFunction(); err != nil || g.Tracing == nil || *g.Tracing != "Disabled" {
		t.Fatalf("goformation: Globals.Function Tracing: want Disabled by default (%v)", err)
	}
	var values []string
	for _, v := range items(get(root, "Parameters", "Tracing", "AllowedValues")) {
		values = append(values, v.Value)
	}
	slices.Sort(values)
	if !slices.Equal(values, []string{"Active", "Disabled", "PassThrough"}) {
		t.Fatalf("parameter Tracing: AllowedValues %v, want Active, Disabled, PassThrough", values)
	}
	for id := range functions {
		props := get(root, "Resources", id, "Properties")
		if get(props, "Tracing") != nil || get(props, "LoggingConfig") != nil {
			t.Fatalf("%s: Tracing and LoggingConfig belong in Globals.Function", id)
		}
	}
}
