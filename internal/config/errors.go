package config

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// problem is one bad setting.
type problem struct {
	// setting is the path of the setting in the file ("routes.x.lane") or
	// the name of an environment variable; "" when unknown.
	setting string
	msg     string
	// line is the line in the file, or 0.
	line int
	// hint follows the line, such as `did you mean "shards"?`.
	hint string
}

func (e *problem) Error() string {
	var b strings.Builder
	b.WriteString("config: ")
	if e.setting != "" {
		b.WriteString(e.setting)
		b.WriteString(": ")
	} else if e.line > 0 {
		fmt.Fprintf(&b, "line %d: ", e.line)
	}
	b.WriteString(e.msg)
	if e.setting != "" && e.line > 0 {
		fmt.Fprintf(&b, " (line %d)", e.line)
	}
	if e.hint != "" {
		b.WriteString("; ")
		b.WriteString(e.hint)
	}
	return b.String()
}

// problems collects every problem found in a configuration.
type problems struct {
	list []error
	// undecoded holds the settings that failed to decode: later checks of
	// them, or of settings inside them, would only repeat the news. "" is
	// the whole file.
	undecoded []string
}

func (p *problems) add(e *problem) { p.list = append(p.list, e) }

// addJoined adds the problems err joins, skipping those about settings that
// failed to decode.
func (p *problems) addJoined(err error) {
	if err == nil {
		return
	}
	errs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	}
	for _, e := range errs {
		if pr, ok := e.(*problem); ok && p.isUndecoded(pr.setting) {
			continue
		}
		p.list = append(p.list, e)
	}
}

func (p *problems) isUndecoded(setting string) bool {
	for _, u := range p.undecoded {
		if u == "" && !strings.HasPrefix(setting, "HOOKLINE_") {
			return true // the whole file: all but the environment
		}
		if setting == u || strings.HasPrefix(setting, u+".") || strings.HasPrefix(setting, u+"[") {
			return true
		}
	}
	return false
}

func (p *problems) err() error { return errors.Join(p.list...) }

// locate gives the problems about settings of the file that have no line
// the line of their setting, or of the closest enclosing setting the file
// has (for a required setting that is missing).
func (p *problems) locate(lines map[string]int) {
	for _, e := range p.list {
		if pr, ok := e.(*problem); ok && pr.line == 0 && pr.setting != "" && !strings.HasPrefix(pr.setting, "HOOKLINE_") {
			pr.line = lineOf(lines, pr.setting)
		}
	}
}

// settingLines maps the path of every setting in data to its line.
func settingLines(data []byte) map[string]int {
	idx := indexNodes(data)
	lines := make(map[string]int, len(idx))
	for _, e := range idx {
		lines[e.path] = e.key.Line
	}
	return lines
}

// lineOf returns the line of the setting at path, or of the closest
// enclosing setting in lines; 0 if none.
func lineOf(lines map[string]int, path string) int {
	for path != "" {
		if n, ok := lines[path]; ok {
			return n
		}
		path = parentPath(path)
	}
	return 0
}

// parentPath returns the path of the setting that holds the one at path:
// "routes.x" for "routes.x.lane", "routes" for routes["a b"], "" at the top.
func parentPath(path string) string {
	if strings.HasSuffix(path, "]") {
		if i := strings.LastIndex(path, "["); i >= 0 {
			return path[:i]
		}
		return ""
	}
	if i := strings.LastIndexAny(path, ".]"); i >= 0 {
		if path[i] == ']' {
			return path[:i+1]
		}
		return path[:i]
	}
	return ""
}

// Messages of yaml.v3's decoding errors, and of nodeError.
var (
	reUnknown   = regexp.MustCompile(`^line (\d+): field (.*) not found in type (\S+)$`)
	reType      = regexp.MustCompile("(?s)^line (\\d+): cannot unmarshal (!!\\w+)(?: `(.*)`)? into (.+)$")
	reDuplicate = regexp.MustCompile(`^line (\d+): mapping key (".*") already defined at line (\d+)$`)
	reAt        = regexp.MustCompile(`(?s)^line (\d+) column (\d+): (.*)$`)
)

// decodeErrors turns the messages of a yaml.TypeError into problems that
// name their settings, found by their place in data.
func (p *problems) decodeErrors(msgs []string, data []byte) {
	idx := indexNodes(data)
	for _, m := range msgs {
		pr, undecoded, ok := rewrite(m, idx)
		if ok {
			p.undecoded = append(p.undecoded, undecoded)
		}
		p.add(pr)
	}
}

// rewrite returns the problem m reports and, if decoding left a setting
// unset, its path ("" for the whole file).
func rewrite(m string, idx []entry) (pr *problem, undecoded string, ok bool) {
	if s := reAt.FindStringSubmatch(m); s != nil {
		line, col := atoi(s[1]), atoi(s[2])
		for _, e := range idx {
			if e.val.Line == line && e.val.Column == col {
				return &problem{setting: e.path, msg: s[3], line: line}, e.path, true
			}
		}
		return &problem{msg: s[3], line: line}, "", true
	}
	if s := reUnknown.FindStringSubmatch(m); s != nil {
		line := atoi(s[1])
		hint := DidYouMean(s[2], knownSettings(s[3]))
		for _, e := range idx {
			if e.key.Line == line && e.key.Value == s[2] {
				return &problem{setting: e.path, msg: "unknown setting", line: line, hint: hint}, "", false
			}
		}
		return &problem{msg: fmt.Sprintf("unknown setting %q", s[2]), line: line, hint: hint}, "", false
	}
	if s := reDuplicate.FindStringSubmatch(m); s != nil {
		// yaml.v3 decodes nothing of a mapping with a duplicate key.
		line := atoi(s[1])
		key, _ := strconv.Unquote(s[2])
		msg := "set twice; first at line " + s[3]
		for _, e := range idx {
			if e.key.Line == line && e.key.Value == key {
				return &problem{setting: e.path, msg: msg, line: line}, e.parent, true
			}
		}
		return &problem{msg: fmt.Sprintf("%q %s", key, msg), line: line}, "", true
	}
	if s := reType.FindStringSubmatch(m); s != nil {
		line := atoi(s[1])
		got := gotName(s[2])
		if s[3] != "" {
			got = "`" + s[3] + "`"
		}
		msg := "want " + wantName(s[4]) + ", got " + got
		for _, e := range idx {
			if e.val.Line == line && valueMatches(e.val, s[2], s[3]) {
				return &problem{setting: e.path, msg: msg, line: line}, e.path, true
			}
		}
		return &problem{msg: msg, line: line}, "", true
	}
	return &problem{msg: m}, "", true
}

// valueMatches reports whether n is the node a "cannot unmarshal" message
// with tag and (possibly truncated) value is about.
func valueMatches(n *yaml.Node, tag, value string) bool {
	switch n.Kind {
	case yaml.MappingNode:
		return tag == "!!map"
	case yaml.SequenceNode:
		return tag == "!!seq"
	case yaml.ScalarNode:
		if v, ok := strings.CutSuffix(value, "..."); ok && len(n.Value) > 10 {
			return strings.HasPrefix(n.Value, v)
		}
		return n.Value == value
	}
	return false
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

// wantName describes a Go type from a yaml.v3 message.
func wantName(t string) string {
	switch {
	case strings.HasPrefix(t, "int"), strings.HasPrefix(t, "uint"):
		return "an integer"
	case t == "string", t == "queue.Policy", t == "config.Scheme":
		return "a string"
	case t == "bool":
		return "true or false"
	case strings.HasPrefix(t, "map["), strings.HasPrefix(t, "config."):
		return "a mapping"
	case strings.HasPrefix(t, "[]"):
		return "a list"
	}
	return t
}

// gotName describes a YAML tag.
func gotName(tag string) string {
	switch tag {
	case "!!map":
		return "a mapping"
	case "!!seq":
		return "a list"
	case "!!str":
		return "a string"
	case "!!int":
		return "an integer"
	case "!!float":
		return "a number"
	case "!!bool":
		return "a boolean"
	}
	return tag
}

// entry is one key and value of a mapping in the file, with its path.
type entry struct {
	key, val     *yaml.Node
	path, parent string
}

// indexNodes lists every mapping entry in data's first document.
func indexNodes(data []byte) []entry {
	var root yaml.Node
	if yaml.Unmarshal(data, &root) != nil {
		return nil
	}
	var out []entry
	var walk func(n *yaml.Node, path string)
	walk = func(n *yaml.Node, path string) {
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				walk(c, path)
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				p := joinPath(path, k.Value)
				out = append(out, entry{key: k, val: v, path: p, parent: path})
				walk(v, p)
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				walk(c, fmt.Sprintf("%s[%d]", path, i))
			}
		}
	}
	walk(&root, "")
	return out
}

// joinPath appends name to the setting path parent: "routes.post-create",
// or routes["odd name"] when name holds other than [A-Za-z0-9_.-].
func joinPath(parent, name string) string {
	plain := name != ""
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			plain = false
			break
		}
	}
	switch {
	case !plain:
		return parent + "[" + strconv.Quote(name) + "]"
	case parent == "":
		return name
	}
	return parent + "." + name
}
