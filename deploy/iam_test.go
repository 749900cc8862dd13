package deploy

import (
	"fmt"
	"path"
	"strings"

	"gopkg.in/yaml.v3"
)

// invokeAction is the permission to call lambda:Invoke.
const invokeAction = "lambda:InvokeFunction"

// grant is one permission, held by a function's role or by a role of the
// template.
type grant struct {
	function string     // logical id of the function whose role holds it, or of the role
	resource *yaml.Node // the Resource it is granted on
	via      string     // where it was found, for messages
	template bool       // granted by a SAM policy template (resource is its parameter)
}

// samTemplates maps an IAM action to the SAM policy templates that grant it
// and the template parameter naming the resource.
var samTemplates = map[string]map[string]string{
	invokeAction:                    {"LambdaInvokePolicy": "FunctionName"},
	"secretsmanager:GetSecretValue": {"AWSSecretsManagerGetSecretValuePolicy": "SecretArn"},
}

// grantsOf finds every permission for action (such as
// lambda:InvokeFunction) a template gives: in the functions' Policies
// (inline statements, SAM policy templates, managed policies of the template
// referenced from there, both branches of an Fn::If), in the inline
// policies and managed policies of the template's roles (held by the role's
// logical id) and anywhere else IAM permissions can be written. problems
// lists what cannot be checked or is not allowed at all: a function with its
// own Role, Allow with NotAction or NotResource, the action granted to
// users, groups or through a policy attached from the policy's side, AWS
// managed policies that may grant it.
func grantsOf(root *yaml.Node, action string) (grants []grant, problems []string) {
	service, _, _ := strings.Cut(action, ":")
	resources := get(root, "Resources")

	// statementGrants reports the invoke grants of one policy document.
	statementGrants := func(doc *yaml.Node, function, via string) {
		for _, st := range items(get(doc, "Statement")) {
			for _, st := range branches(st) {
				if effect, _ := str(get(st, "Effect")); effect != "Allow" {
					continue
				}
				if get(st, "NotAction") != nil || get(st, "NotResource") != nil {
					problems = append(problems, fmt.Sprintf("%s: an Allow statement with NotAction or NotResource may grant %s", via, action))
					continue
				}
				if !grantsAction(get(st, "Action"), action) {
					continue
				}
				if function == "" {
					problems = append(problems, fmt.Sprintf("%s: grants %s outside a function's Policies", via, action))
					continue
				}
				res := get(st, "Resource")
				if res == nil {
					problems = append(problems, fmt.Sprintf("%s: %s without a Resource", via, action))
					continue
				}
				for _, r := range items(res) {
					for _, r := range branches(r) {
						grants = append(grants, grant{function: function, resource: r, via: via})
					}
				}
			}
		}
	}

	// Managed policies are checked where a function attaches them; IAM
	// roles, users, groups and policies of their own are not expected.
	for _, r := range entries(resources) {
		typ, _ := str(get(r.val, "Type"))
		props := get(r.val, "Properties")
		switch typ {
		case "AWS::IAM::ManagedPolicy":
			for _, attach := range []string{"Roles", "Users", "Groups"} {
				if get(props, attach) != nil {
					statementGrants(get(props, "PolicyDocument"), "", r.key+" (attached through "+attach+")")
				}
			}
		case "AWS::IAM::Policy":
			statementGrants(get(props, "PolicyDocument"), "", r.key)
		case "AWS::IAM::Role":
			for _, p := range items(get(props, "Policies")) {
				for _, p := range branches(p) {
					statementGrants(get(p, "PolicyDocument"), r.key, r.key+" Policies")
				}
			}
			for i, arn := range items(get(props, "ManagedPolicyArns")) {
				for _, arn := range branches(arn) {
					via := fmt.Sprintf("%s ManagedPolicyArns[%d]", r.key, i)
					if name, ok := refName(arn); ok && resourceType(root, name) == "AWS::IAM::ManagedPolicy" {
						statementGrants(get(resources, name, "Properties", "PolicyDocument"), r.key, via+" ("+name+")")
					} else if s, ok := str(arn); !ok || strings.Contains(strings.ToLower(s), service) {
						problems = append(problems, fmt.Sprintf("%s: %s may grant %s", via, describe(arn), action))
					}
				}
			}
		case "AWS::IAM::User", "AWS::IAM::Group":
			for _, p := range items(get(props, "Policies")) {
				statementGrants(get(p, "PolicyDocument"), "", r.key)
			}
		}
	}

	for _, fn := range resourcesOfType(root, "AWS::Serverless::Function") {
		props := get(resources, fn, "Properties")
		if get(props, "Role") != nil {
			problems = append(problems, fn+": has its own Role, whose permissions this test cannot see")
		}
		for i, p := range items(get(props, "Policies")) {
			for _, p := range branches(p) {
				via := fmt.Sprintf("%s Policies[%d]", fn, i)
				if name, ok := refName(p); ok {
					switch typ := resourceType(root, name); typ {
					case "AWS::IAM::ManagedPolicy":
						statementGrants(get(resources, name, "Properties", "PolicyDocument"), fn, via+" ("+name+")")
					case "":
						problems = append(problems, fmt.Sprintf("%s: a managed policy ARN from parameter %s may grant anything", via, name))
					default:
						problems = append(problems, fmt.Sprintf("%s: refers to %s, a %s, not a managed policy", via, name, typ))
					}
					continue
				}
				if s, ok := str(p); ok {
					// An AWS managed policy, by name or ARN.
					if strings.Contains(strings.ToLower(s), service) && !isLambdaExecutionPolicy(s) {
						problems = append(problems, fmt.Sprintf("%s: managed policy %q may grant %s", via, s, action))
					}
					continue
				}
				if get(p, "Statement") != nil {
					statementGrants(p, fn, via)
					continue
				}
				for _, tpl := range entries(p) { // SAM policy templates
					if param, ok := samTemplates[action][tpl.key]; ok {
						grants = append(grants, grant{function: fn, resource: get(tpl.val, param), via: via + " (" + tpl.key + ")", template: true})
					}
				}
			}
		}
	}
	return grants, problems
}

// grantsAction reports whether an IAM Action (a string or a list, with the
// wildcards * and ?) includes action.
func grantsAction(actions *yaml.Node, action string) bool {
	for _, a := range items(actions) {
		for _, a := range branches(a) {
			s, ok := str(a)
			if !ok {
				return true // computed: assume the worst
			}
			if ok, err := path.Match(strings.ToLower(s), strings.ToLower(action)); ok || err != nil {
				return true
			}
		}
	}
	return false
}

// isLambdaExecutionPolicy reports whether an AWS managed policy is one of the
// execution-role policies, which grant logs and network interfaces but no
// invoke rights.
func isLambdaExecutionPolicy(s string) bool {
	base := path.Base(s)
	return base == "AWSLambdaBasicExecutionRole" || base == "AWSLambdaVPCAccessExecutionRole"
}

// invokeRule allows holder (a function or a role of the template) to invoke
// target's live alias, and nothing else.
type invokeRule struct{ holder, target string }

// checkInvokePermission returns what is wrong with the template's invoke
// permissions: only the holders of rules may invoke, each only its target's
// live alias (!Ref <target>.Alias: no wildcard, not $LATEST through the
// function's ARN, no other function), and each holder has that permission.
func checkInvokePermission(root *yaml.Node, rules []invokeRule) []string {
	grants, problems := grantsOf(root, invokeAction)
	targets := map[string]string{}
	for _, r := range rules {
		targets[r.holder] = r.target
	}
	holders := map[string]bool{}
	for _, g := range grants {
		target, ok := targets[g.function]
		if !ok {
			problems = append(problems, fmt.Sprintf("%s: %s may call %s on %s; only %v may invoke", g.via, g.function, invokeAction, describe(g.resource), rules))
			continue
		}
		if g.template || !isRef(g.resource, target+".Alias") {
			problems = append(problems, fmt.Sprintf("%s: %s is granted on %s, want only !Ref %s.Alias", g.via, invokeAction, describe(g.resource), target))
			continue
		}
		holders[g.function] = true
	}
	for _, r := range rules {
		if !holders[r.holder] {
			problems = append(problems, fmt.Sprintf("%s has no %s permission on %s's alias", r.holder, invokeAction, r.target))
		}
	}
	return problems
}
