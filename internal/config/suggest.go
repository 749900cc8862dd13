package config

import (
	"fmt"
	"reflect"
	"strings"
)

// settingTypes are the types of the file's mappings by the name yaml.v3's
// "field X not found in type T" messages give them.
var settingTypes = map[string]reflect.Type{
	"config.document":  reflect.TypeFor[document](),
	"config.Lane":      reflect.TypeFor[Lane](),
	"config.Route":     reflect.TypeFor[Route](),
	"config.routeDoc":  reflect.TypeFor[routeDoc](),
	"config.Scheduler": reflect.TypeFor[Scheduler](),
	"config.Drain":     reflect.TypeFor[Drain](),
	"config.Verify":    reflect.TypeFor[Verify](),
	"config.Metrics":   reflect.TypeFor[Metrics](),
}

// knownSettings returns the setting names of the mapping type named by a
// yaml.v3 message ("config.Route"), or none for a type it does not know.
func knownSettings(typeName string) []string {
	t, ok := settingTypes[typeName]
	if !ok {
		return nil
	}
	var names []string
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		for i := range t.NumField() {
			f := t.Field(i)
			name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			switch {
			case opts == "inline":
				walk(f.Type)
			case name != "" && name != "-":
				names = append(names, name)
			}
		}
	}
	walk(t)
	return names
}

// Nearest returns the name of known closest to word, for a "did you mean"
// hint: one at most 1 + len(word)/8 edits away (insertions, deletions,
// substitutions, swaps of neighbours), ignoring case and treating '-' and
// '_' alike; "" if none is that close.
func Nearest(word string, known []string) string {
	norm := func(s string) string { return strings.ReplaceAll(strings.ToLower(s), "-", "_") }
	w := norm(word)
	best, bestD := "", 1+len(word)/8+1
	for _, k := range known {
		if d := editDistance(w, norm(k)); d < bestD {
			best, bestD = k, d
		}
	}
	return best
}

// DidYouMean returns the hint `did you mean "<name>"?` for the name of
// known nearest to word (see Nearest), or "" if none is close.
func DidYouMean(word string, known []string) string {
	if near := Nearest(word, known); near != "" {
		return fmt.Sprintf("did you mean %q?", near)
	}
	return ""
}

// editDistance is the optimal string alignment distance between a and b.
func editDistance(a, b string) int {
	prev2 := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}
