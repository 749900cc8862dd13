package deploy

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// This file checks the stack's operations resources: the alarms against
// docs/RUNBOOK.md and the alarm topic, and the alarms and the dashboard
// against the metrics the functions emit.

const runbookPath = "../docs/RUNBOOK.md"

// emitted lists the metrics the functions write (EMF, internal/telemetry),
// each with the package that emits it and the dimension sets it is
// published under besides the Stack dimension, which every set carries
// ({} is Stack alone). TestEmittedMetricsMatchSource keeps it equal to the
// source.
var emitted = map[string]struct {
	pkg  string
	sets [][]string
}{
	"Accepted":        {"ingest", [][]string{{"Lane", "Route"}, {}}},
	"Duplicate":       {"ingest", [][]string{{"Lane", "Route"}, {}}},
	"Refused":         {"ingest", [][]string{{"ErrorCode"}, {}}},
	"Latency":         {"ingest", [][]string{{}}},
	"Handled":         {"drain", [][]string{{"Lane", "Route"}, {"Lane"}}},
	"Retried":         {"drain", [][]string{{"Lane", "Route"}, {"Lane"}}},
	"DeadLettered":    {"drain", [][]string{{"Lane", "Route"}, {"Lane"}}},
	"Parked":          {"drain", [][]string{{"Lane", "Route"}, {"Lane"}}},
	"Throttled":       {"drain", [][]string{{"Lane", "Route"}, {"Lane"}}},
	"HandlerDuration": {"drain", [][]string{{"Lane", "Route"}, {"Lane"}}},
	"RateWait":        {"drain", [][]string{{"Lane", "Route"}, {"Lane"}}},
	"Lag":             {"drain", [][]string{{"Lane", "Route"}, {"Lane"}}},
	"ReadyKeys":       {"schedule", [][]string{{"Lane"}, {}}},
	"LeasedKeys":      {"schedule", [][]string{{"Lane"}, {}}},
	"DelayedKeys":     {"schedule", [][]string{{"Lane"}, {}}},
	"RetryingKeys":    {"schedule", [][]string{{"Lane"}, {}}},
	"PausedKeys":      {"schedule", [][]string{{"Lane"}, {}}},
	"ParkedKeys":      {"schedule", [][]string{{"Lane"}, {}}},
	"QueuedItems":     {"schedule", [][]string{{"Lane"}, {}}},
	"LiveSlots":       {"schedule", [][]string{{"Lane"}, {}}},
	"Concurrency":     {"schedule", [][]string{{"Lane"}, {}}},
	"OldestItemAge":   {"schedule", [][]string{{"Lane"}, {}}},
	"OldestReadyAge":  {"schedule", [][]string{{"Lane"}, {}}},
	"DeadLetters":     {"schedule", [][]string{{"Lane"}, {}}},
}

// metricLiteral finds metric names in the emitting packages' source:
// telemetry.Metric{Name: "X"}, the scheduler's gauge("X", ...) and the
// drain's name constants (mX = "X").
var metricLiteral = regexp.MustCompile(`(?:[^A-Za-z]Name: |gauge\(|\bm[A-Z]\w*\s*=\s*)"([A-Z]\w*)"`)

// sourceMetrics returns the metric names found in the non-test Go files of
// internal/<pkg>.
func sourceMetrics(t *testing.T, pkg string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("..", "internal", pkg, "*.go"))
	if err != nil || len(files) == 0 {
		t.Fatalf("internal/%s: no Go files (%v)", pkg, err)
	}
	var names []string
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range metricLiteral.FindAllSubmatch(data, -1) {
			if !slices.Contains(names, string(m[1])) {
				names = append(names, string(m[1]))
			}
		}
	}
	return names
}

// TestEmittedMetricsMatchSource checks the list above against the source:
// every metric it names is emitted by its package, and every metric name
// the packages emit is in it.
func TestEmittedMetricsMatchSource(t *testing.T) {
	t.Parallel()
	for _, pkg := range []string{"ingest", "drain", "schedule"} {
		found := sourceMetrics(t, pkg)
		for _, name := range found {
			if m, ok := emitted[name]; !ok || m.pkg != pkg {
				t.Errorf("internal/%s emits %s, which the deploy tests' list does not have (for package %s)", pkg, name, pkg)
			}
		}
		for name, m := range emitted {
			if m.pkg == pkg && !slices.Contains(found, name) {
				t.Errorf("internal/%s: no longer emits %s (found %v); the dashboard or an alarm may read a metric that never comes", pkg, name, found)
			}
		}
	}
}

// publishedUnder reports whether metric name is published under exactly
// the dimensions dims (with Stack, which the caller has checked).
func publishedUnder(name string, dims []string) bool {
	want := slices.Clone(dims)
	slices.Sort(want)
	for _, set := range emitted[name].sets {
		s := slices.Clone(set)
		slices.Sort(s)
		if slices.Equal(s, want) {
			return true
		}
	}
	return false
}

// runbookAlarms returns the "## <LogicalId>Alarm" headings of RUNBOOK.md.
func runbookAlarms(t *testing.T) []string {
	t.Helper()
	var ids []string
	for _, m := range regexp.MustCompile(`(?m)^## (\S+Alarm)\s*$`).FindAllStringSubmatch(readDoc(t, runbookPath), -1) {
		ids = append(ids, m[1])
	}
	return ids
}

// TestAlarmsInRunbook checks that every alarm of the template has a section
// in RUNBOOK.md headed by its logical id, that every such section names an
// alarm of the template, and that the alarm's description links to it.
func TestAlarmsInRunbook(t *testing.T) {
	t.Parallel()
	root := loadTemplate(t)
	alarms := resourcesOfType(root, "AWS::CloudWatch::Alarm")
	if len(alarms) < 13 {
		t.Fatalf("template: %d alarms (%v), want the 13 of issue 9 at least", len(alarms), alarms)
	}
	documented := runbookAlarms(t)
	for _, id := range documented {
		if !slices.Contains(alarms, id) {
			t.Errorf("%s: section %q names no AWS::CloudWatch::Alarm of the template", runbookPath, id)
		}
	}
	doc := readDoc(t, runbookPath)
	for _, id := range alarms {
		if !slices.Contains(documented, id) {
			t.Errorf("%s: alarm %s has no section (## %s)", runbookPath, id, id)
		}
		desc := get(root, "Resources", id, "Properties", "AlarmDescription")
		if fn, arg, ok := intrinsic(desc); ok && fn == "Fn::Sub" {
			desc = arg
		}
		anchor := "docs/RUNBOOK.md#" + strings.ToLower(id)
		if s := deref(desc); s == nil || !strings.Contains(s.Value, anchor) {
			t.Errorf("alarm %s: AlarmDescription does not link to %s", id, anchor)
		}
		// Each section says what to run: at least one hookline command.
		_, section, _ := strings.Cut(doc, "\n## "+id+"\n")
		section, _, _ = strings.Cut(section, "\n## ")
		if !strings.Contains(section, "`hookline ") && !strings.Contains(section, "\nhookline ") {
			t.Errorf("%s: section %s names no hookline command", runbookPath, id)
		}
	}
	for _, want := range []string{"## Operator commands", "HOOKLINE_REDIS_AUTH=iam", "AWS-StartPortForwardingSessionToRemoteHost"} {
		if !strings.Contains(doc, want) {
			t.Errorf("%s: %q is gone", runbookPath, want)
		}
	}
}

// isAlarmTopic reports whether n is the alarm topic:
// !If [CreateAlarmTopic, !Ref AlarmTopic, !Ref AlarmTopicArn].
func isAlarmTopic(n *yaml.Node) bool {
	fn, arg, ok := intrinsic(n)
	if !ok || fn != "Fn::If" || arg.Kind != yaml.SequenceNode || len(arg.Content) != 3 {
		return false
	}
	return arg.Content[0].Value == "CreateAlarmTopic" && isRef(arg.Content[1], "AlarmTopic") && isRef(arg.Content[2], "AlarmTopicArn")
}

// TestAlarmActions checks that every alarm notifies the alarm topic, on
// alarm and back to OK, and that the topic is the parameter's or the
// stack's own.
func TestAlarmActions(t *testing.T) {
	t.Parallel()
	root := loadTemplate(t)
	if resourceType(root, "AlarmTopic") != "AWS::SNS::Topic" {
		t.Fatalf("AlarmTopic: want an AWS::SNS::Topic")
	}
	if c, _ := str(get(root, "Resources", "AlarmTopic", "Condition")); c != "CreateAlarmTopic" {
		t.Fatalf("AlarmTopic: Condition %q, want CreateAlarmTopic", c)
	}
	// CloudWatch cannot publish to a topic under the AWS managed key.
	if k, _ := str(get(root, "Resources", "AlarmTopic", "Properties", "KmsMasterKeyId")); strings.Contains(k, "aws/sns") {
		t.Fatalf("AlarmTopic: KmsMasterKeyId %s: CloudWatch alarms cannot publish to a topic encrypted with the AWS managed key", k)
	}
	cond := get(root, "Conditions", "CreateAlarmTopic")
	if fn, arg, ok := intrinsic(cond); !ok || fn != "Fn::Equals" || len(arg.Content) != 2 || !isRef(arg.Content[0], "AlarmTopicArn") || arg.Content[1].Value != "" {
		t.Fatalf("Conditions.CreateAlarmTopic: %s, want !Equals [!Ref AlarmTopicArn, \"\"]", describe(cond))
	}
	if d, ok := str(get(root, "Parameters", "AlarmTopicArn", "Default")); !ok || d != "" {
		t.Fatalf("AlarmTopicArn: default %q, want empty (optional)", d)
	}
	for _, id := range resourcesOfType(root, "AWS::CloudWatch::Alarm") {
		props := get(root, "Resources", id, "Properties")
		for _, key := range []string{"AlarmActions", "OKActions"} {
			acts := items(get(props, key))
			if len(acts) != 1 || !isAlarmTopic(acts[0]) {
				t.Errorf("alarm %s: %s = %s, want [!If [CreateAlarmTopic, !Ref AlarmTopic, !Ref AlarmTopicArn]]", id, key, describe(get(props, key)))
			}
		}
		if v := get(props, "ActionsEnabled"); v != nil && v.Value != "true" {
			t.Errorf("alarm %s: ActionsEnabled %s", id, describe(v))
		}
		name := get(props, "AlarmName")
		if fn, arg, ok := intrinsic(name); !ok || fn != "Fn::Sub" || !strings.HasPrefix(arg.Value, "${AWS::StackName}-") {
			t.Errorf("alarm %s: AlarmName %s, want !Sub ${AWS::StackName}-...", id, describe(name))
		}
	}
}

// alarmMetric is one metric an alarm reads.
type alarmMetric struct {
	namespace *yaml.Node
	name      string
	dims      *yaml.Node
}

// alarmMetrics returns the metrics alarm props reads: its own, or those of
// its metric-math Metrics.
func alarmMetrics(props *yaml.Node) []alarmMetric {
	if get(props, "MetricName") != nil {
		name, _ := str(get(props, "MetricName"))
		return []alarmMetric{{get(props, "Namespace"), name, get(props, "Dimensions")}}
	}
	var out []alarmMetric
	for _, m := range items(get(props, "Metrics")) {
		if ms := get(m, "MetricStat", "Metric"); ms != nil {
			name, _ := str(get(ms, "MetricName"))
			out = append(out, alarmMetric{get(ms, "Namespace"), name, get(ms, "Dimensions")})
		}
	}
	return out
}

// TestAlarmMetrics checks what the alarms read: hookline's metrics by their
// emitted names and dimension sets, in MetricsNamespace, for this stack
// only; the cache's metrics only where the stack creates the cache.
func TestAlarmMetrics(t *testing.T) {
	t.Parallel()
	root := loadTemplate(t)
	cfg := loadConfig(t)
	if ns, _ := str(get(root, "Parameters", "MetricsNamespace", "Default")); ns != cfg.Metrics.Namespace {
		t.Fatalf("MetricsNamespace: default %q, but %s's metrics.namespace is %q", ns, configPath, cfg.Metrics.Namespace)
	}
	for _, id := range resourcesOfType(root, "AWS::CloudWatch::Alarm") {
		props := get(root, "Resources", id, "Properties")
		ms := alarmMetrics(props)
		if len(ms) == 0 {
			t.Errorf("alarm %s: reads no metric", id)
		}
		for _, m := range ms {
			ns, literal := str(m.namespace)
			switch {
			case isRef(m.namespace, "MetricsNamespace"):
				if _, ok := emitted[m.name]; !ok {
					t.Errorf("alarm %s: metric %s is not one the functions emit", id, m.name)
					continue
				}
				var dims []string
				stack := false
				for _, d := range items(m.dims) {
					k, _ := str(get(d, "Name"))
					if k == "Stack" {
						stack = isRef(get(d, "Value"), "AWS::StackName")
						continue
					}
					dims = append(dims, k)
				}
				if !stack {
					t.Errorf("alarm %s: %s without the dimension Stack = !Ref AWS::StackName (HOOKLINE_STACK)", id, m.name)
				}
				if !publishedUnder(m.name, dims) {
					t.Errorf("alarm %s: %s is not published under Stack and %v (sets %v)", id, m.name, dims, emitted[m.name].sets)
				}
			case literal && ns == "AWS/ElastiCache":
				if c, _ := str(get(root, "Resources", id, "Condition")); c != "CreateCache" {
					t.Errorf("alarm %s: reads the cache's %s without Condition CreateCache", id, m.name)
				}
			case literal && strings.HasPrefix(ns, "AWS/"):
			default:
				t.Errorf("alarm %s: namespace %s, want !Ref MetricsNamespace or an AWS/ namespace", id, describe(m.namespace))
			}
		}
	}
	if s, _ := str(get(root, "Resources", "SchedulerNotRunningAlarm", "Properties", "TreatMissingData")); s != "breaching" {
		t.Errorf("SchedulerNotRunningAlarm: TreatMissingData %q, want breaching (no invocation, no data)", s)
	}
}

// dashboardSearch parses a dashboard's SEARCH('{ns,dims...} filters', ...)
// expression.
var dashboardSearch = regexp.MustCompile(`^SEARCH\('\{([^}]*)\}\s*([^']*)',\s*'[A-Za-z0-9.]+',\s*[0-9]+\)$`)

// TestDashboardMetrics parses the dashboard's body (with the !Sub
// placeholders filled in) and checks that it shows only metrics the
// functions emit, under dimension sets they are published under and this
// stack's Stack value, and that it shows the ones issue 9 asks for.
func TestDashboardMetrics(t *testing.T) {
	t.Parallel()
	root := loadTemplate(t)
	if resourceType(root, "Dashboard") != "AWS::CloudWatch::Dashboard" {
		t.Fatalf("Dashboard: want an AWS::CloudWatch::Dashboard")
	}
	body := get(root, "Resources", "Dashboard", "Properties", "DashboardBody")
	fn, arg, ok := intrinsic(body)
	if !ok || fn != "Fn::Sub" || arg.Kind != yaml.ScalarNode {
		t.Fatalf("Dashboard: DashboardBody %s, want !Sub of a JSON string", describe(body))
	}
	const ns, stack = "ns-test", "stack-test"
	text := strings.NewReplacer("${MetricsNamespace}", ns, "${AWS::StackName}", stack, "${AWS::Region}", "eu-west-1").Replace(arg.Value)
	if i := strings.Index(text, "${"); i >= 0 {
		t.Fatalf("DashboardBody: unknown placeholder at %q", text[i:min(i+40, len(text))])
	}
	var dash struct {
		Widgets []struct {
			Type       string `json:"type"`
			Properties struct {
				Title   string  `json:"title"`
				Metrics [][]any `json:"metrics"`
			} `json:"properties"`
		} `json:"widgets"`
	}
	dec := json.NewDecoder(strings.NewReader(text))
	if err := dec.Decode(&dash); err != nil {
		t.Fatalf("DashboardBody: %v", err)
	}
	shown := map[string]bool{}
	check := func(where, name string, dims map[string]string) {
		if _, ok := emitted[name]; !ok {
			t.Errorf("%s: metric %s is not one the functions emit", where, name)
			return
		}
		shown[name] = true
		if dims["Stack"] != stack {
			t.Errorf("%s: %s without Stack = ${AWS::StackName}", where, name)
		}
		var keys []string
		for k := range dims {
			if k != "Stack" {
				keys = append(keys, k)
			}
		}
		if !publishedUnder(name, keys) {
			t.Errorf("%s: %s is not published under Stack and %v (sets %v)", where, name, keys, emitted[name].sets)
		}
	}
	for i, w := range dash.Widgets {
		where := "dashboard widget " + w.Properties.Title
		if w.Type != "metric" {
			continue
		}
		if len(w.Properties.Metrics) == 0 {
			t.Errorf("%s (%d): no metrics", where, i)
		}
		for _, row := range w.Properties.Metrics {
			if len(row) == 0 {
				t.Errorf("%s: empty metrics row", where)
				continue
			}
			if o, ok := row[0].(map[string]any); ok {
				expr, _ := o["expression"].(string)
				m := dashboardSearch.FindStringSubmatch(expr)
				if m == nil {
					t.Errorf("%s: expression %q is not a SEARCH of one metric", where, expr)
					continue
				}
				schema := strings.Split(m[1], ",")
				if schema[0] != ns {
					t.Errorf("%s: SEARCH in namespace %q, want ${MetricsNamespace}", where, schema[0])
					continue
				}
				filters := map[string]string{}
				for _, f := range regexp.MustCompile(`(\w+)="([^"]*)"`).FindAllStringSubmatch(m[2], -1) {
					filters[f[1]] = f[2]
				}
				dims := map[string]string{}
				for _, d := range schema[1:] {
					dims[d] = "*"
				}
				dims["Stack"] = filters["Stack"]
				if filters["MetricName"] == "" {
					t.Errorf("%s: SEARCH %q without MetricName=\"...\"", where, expr)
					continue
				}
				check(where, filters["MetricName"], dims)
				continue
			}
			var strs []string
			for _, v := range row {
				if s, ok := v.(string); ok {
					strs = append(strs, s)
				}
			}
			if len(strs) < 2 || len(strs)%2 != 0 || slices.Contains(strs, ".") {
				t.Errorf("%s: metrics row %v: want [namespace, name, dimension, value, ..., {options}] written out", where, row)
				continue
			}
			if strs[0] != ns {
				if !strings.HasPrefix(strs[0], "AWS/") {
					t.Errorf("%s: namespace %q, want ${MetricsNamespace}", where, strs[0])
				}
				continue
			}
			dims := map[string]string{}
			for j := 2; j+1 < len(strs); j += 2 {
				dims[strs[j]] = strs[j+1]
			}
			check(where, strs[1], dims)
		}
	}
	for _, name := range []string{
		"Accepted", "Refused", "Latency",
		"Handled", "Retried", "DeadLettered", "Throttled", "HandlerDuration", "Lag",
		"ReadyKeys", "LeasedKeys", "Concurrency", "OldestItemAge", "DeadLetters",
	} {
		if !shown[name] {
			t.Errorf("dashboard: does not show %s", name)
		}
	}
}

// TestLogQueries checks the saved Logs Insights queries: the four of issue
// 9, over the stack's log groups, filtering on messages the functions log.
func TestLogQueries(t *testing.T) {
	t.Parallel()
	root := loadTemplate(t)
	queries := resourcesOfType(root, "AWS::Logs::QueryDefinition")
	for _, want := range []string{"WebhookJourneyQuery", "RefusalsByCodeQuery", "KeyHistoryQuery", "SlowestHandlersQuery"} {
		if !slices.Contains(queries, want) {
			t.Errorf("template: saved query %s missing", want)
		}
	}
	var source string
	for _, f := range []string{"../internal/ingest/server.go", "../internal/drain/drain.go"} {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		source += string(data)
	}
	for _, id := range queries {
		props := get(root, "Resources", id, "Properties")
		groups := items(get(props, "LogGroupNames"))
		if len(groups) == 0 {
			t.Errorf("%s: no LogGroupNames", id)
		}
		for _, g := range groups {
			name, _ := refName(g)
			if resourceType(root, name) != "AWS::Logs::LogGroup" {
				t.Errorf("%s: log group %s, want !Ref of the stack's log groups", id, describe(g))
			}
		}
		q, _ := str(get(props, "QueryString"))
		for _, m := range regexp.MustCompile(`msg = "([^"]+)"`).FindAllStringSubmatch(q, -1) {
			if !strings.Contains(source, `"`+m[1]+`"`) {
				t.Errorf("%s: filters on msg %q, which neither ingest nor the drain logs", id, m[1])
			}
		}
		for _, m := range regexp.MustCompile(`filter (\w+) `).FindAllStringSubmatch(q, -1) {
			if m[1] != "msg" && !strings.Contains(source, `"`+m[1]+`"`) {
				t.Errorf("%s: field %s is not one ingest or the drain logs", id, m[1])
			}
		}
	}
}
