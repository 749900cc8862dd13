package deploy

import (
	"os"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// This file reads CloudFormation YAML with yaml.v3 for what goformation
// cannot show: goformation resolves intrinsic functions against parameter
// defaults and drops the rest (a !GetAtt becomes nil), and it types SAM-only
// shapes such as ScheduleV2 events loosely. yaml.v3 keeps the short-form tags
// (!Ref, !GetAtt, !Sub, !If ...) on the nodes, so the helpers below can tell
// exactly what refers to what.

// templatePath is the SAM template, relative to this package's directory.
const templatePath = "../template.yaml"

// loadYAML parses data and returns its top-level node (a mapping for a
// template).
func loadYAML(t *testing.T, name string, data []byte) *yaml.Node {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		t.Fatalf("%s: not a YAML mapping", name)
	}
	return doc.Content[0]
}

// loadTemplate parses template.yaml with yaml.v3.
func loadTemplate(t *testing.T) *yaml.Node {
	t.Helper()
	data, err := os.ReadFile(templatePath)
	if err != nil {
		t.Fatalf("read template: %v", err)
	}
	return loadYAML(t, templatePath, data)
}

// get follows keys through nested mappings and returns the node found, or
// nil if any key is missing or a node on the way is not a mapping.
func get(n *yaml.Node, keys ...string) *yaml.Node {
	for _, k := range keys {
		n = deref(n)
		if n == nil || n.Kind != yaml.MappingNode {
			return nil
		}
		var next *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == k {
				next = n.Content[i+1]
				break
			}
		}
		n = next
	}
	return deref(n)
}

// deref resolves YAML aliases.
func deref(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

// entry is one key and value of a mapping.
type entry struct {
	key string
	val *yaml.Node
}

// entries returns a mapping's entries in file order (none for a non-mapping).
func entries(n *yaml.Node) []entry {
	n = deref(n)
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	var out []entry
	for i := 0; i+1 < len(n.Content); i += 2 {
		out = append(out, entry{n.Content[i].Value, deref(n.Content[i+1])})
	}
	return out
}

// items returns a sequence's elements, or n alone if it is not a sequence
// (CloudFormation accepts a single value where a list is expected).
func items(n *yaml.Node) []*yaml.Node {
	n = deref(n)
	if n == nil {
		return nil
	}
	if n.Kind != yaml.SequenceNode || isIntrinsic(n) {
		return []*yaml.Node{n}
	}
	out := make([]*yaml.Node, 0, len(n.Content))
	for _, c := range n.Content {
		out = append(out, deref(c))
	}
	return out
}

// str returns a plain scalar's value and whether n is one (intrinsic calls,
// though scalars in short form, are not).
func str(n *yaml.Node) (string, bool) {
	n = deref(n)
	if n == nil || n.Kind != yaml.ScalarNode || isIntrinsic(n) {
		return "", false
	}
	return n.Value, true
}

// intrinsic reports which intrinsic function n calls ("Ref", "Condition",
// "Fn::GetAtt", "Fn::Sub", "Fn::If", ...) and its argument, for the short
// form (!GetAtt A.B) and the long form ({"Fn::GetAtt": [A, B]}) alike.
func intrinsic(n *yaml.Node) (fn string, arg *yaml.Node, ok bool) {
	n = deref(n)
	if n == nil {
		return "", nil, false
	}
	if strings.HasPrefix(n.Tag, "!") && !strings.HasPrefix(n.Tag, "!!") {
		name := strings.TrimPrefix(n.Tag, "!")
		switch name {
		case "Ref", "Condition":
			return name, n, true
		default:
			return "Fn::" + name, n, true
		}
	}
	if n.Kind == yaml.MappingNode && len(n.Content) == 2 {
		k := n.Content[0].Value
		if k == "Ref" || k == "Condition" || strings.HasPrefix(k, "Fn::") {
			return k, deref(n.Content[1]), true
		}
	}
	return "", nil, false
}

func isIntrinsic(n *yaml.Node) bool {
	_, _, ok := intrinsic(n)
	return ok
}

// refName returns the logical id or parameter n refers to with Ref.
func refName(n *yaml.Node) (string, bool) {
	fn, arg, ok := intrinsic(n)
	if !ok || fn != "Ref" || arg.Kind != yaml.ScalarNode {
		return "", false
	}
	return arg.Value, true
}

// isRef reports whether n is a Ref to name.
func isRef(n *yaml.Node, name string) bool {
	got, ok := refName(n)
	return ok && got == name
}

// isGetAtt reports whether n is Fn::GetAtt of resource's attribute attr,
// written "!GetAtt R.A" or with a [R, A] list.
func isGetAtt(n *yaml.Node, resource, attr string) bool {
	fn, arg, ok := intrinsic(n)
	if !ok || fn != "Fn::GetAtt" {
		return false
	}
	switch arg.Kind {
	case yaml.ScalarNode:
		return arg.Value == resource+"."+attr
	case yaml.SequenceNode:
		return len(arg.Content) == 2 && arg.Content[0].Value == resource && arg.Content[1].Value == attr
	}
	return false
}

// isNoValue reports whether n is Ref AWS::NoValue.
func isNoValue(n *yaml.Node) bool { return isRef(n, "AWS::NoValue") }

// branches returns the values n may take: both outcomes of an Fn::If
// (recursively), without AWS::NoValue; n itself otherwise.
func branches(n *yaml.Node) []*yaml.Node {
	n = deref(n)
	if n == nil || isNoValue(n) {
		return nil
	}
	fn, arg, ok := intrinsic(n)
	if !ok || fn != "Fn::If" {
		return []*yaml.Node{n}
	}
	if arg.Kind != yaml.SequenceNode || len(arg.Content) != 3 {
		return []*yaml.Node{n} // malformed; let the caller reject it
	}
	return append(branches(arg.Content[1]), branches(arg.Content[2])...)
}

// walk calls fn for every node under n, with the mapping keys leading to it.
func walk(n *yaml.Node, path []string, fn func(path []string, n *yaml.Node)) {
	n = deref(n)
	if n == nil {
		return
	}
	fn(path, n)
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			walk(n.Content[i+1], append(path[:len(path):len(path)], n.Content[i].Value), fn)
		}
	case yaml.SequenceNode, yaml.DocumentNode:
		for i, c := range n.Content {
			walk(c, append(path[:len(path):len(path)], strconv.Itoa(i)), fn)
		}
	}
}

// resourcesOfType returns the logical ids of the resources of type typ, in
// file order.
func resourcesOfType(root *yaml.Node, typ string) []string {
	var ids []string
	for _, r := range entries(get(root, "Resources")) {
		if s, _ := str(get(r.val, "Type")); s == typ {
			ids = append(ids, r.key)
		}
	}
	return ids
}

// resourceType returns the Type of resource id ("" if there is none).
func resourceType(root *yaml.Node, id string) string {
	s, _ := str(get(root, "Resources", id, "Type"))
	return s
}

// paramDefault returns the Default of parameter name as an integer.
func paramDefault(t *testing.T, root *yaml.Node, name string) int {
	t.Helper()
	s, ok := str(get(root, "Parameters", name, "Default"))
	if !ok {
		t.Fatalf("parameter %s: no Default", name)
	}
	v, err := strconv.Atoi(s)
	if err != nil {
		t.Fatalf("parameter %s: Default %q is not an integer", name, s)
	}
	return v
}

// describe renders a node for failure messages: "!GetAtt X.Arn", "*", ...
func describe(n *yaml.Node) string {
	n = deref(n)
	if n == nil {
		return "<nothing>"
	}
	out, err := yaml.Marshal(n)
	if err != nil {
		return "<" + err.Error() + ">"
	}
	return strings.TrimSpace(string(out))
}

// checkParamRange checks that parameter name is limited to min..max by its
// MinValue and MaxValue.
func checkParamRange(t *testing.T, root *yaml.Node, name string, min, max int) {
	t.Helper()
	for key, want := range map[string]int{"MinValue": min, "MaxValue": max} {
		s, _ := str(get(root, "Parameters", name, key))
		if got, err := strconv.Atoi(s); err != nil || got != want {
			t.Fatalf("parameter %s: %s %q, want %d", name, key, s, want)
		}
	}
}
