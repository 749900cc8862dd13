package apisurface

import (
	"bytes"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/*.txt from go doc")

// public are the packages a user imports: handler registration, the
// functions' mains, the webhook types.
var public = []string{"handler", "app", "webhook"}

// TestPublicSurface: `go doc -all` of each public package declares exactly
// the names in testdata/<package>.txt. A new exported name is a decision:
// run `go test ./internal/apisurface -update` and say why in the change.
func TestPublicSurface(t *testing.T) {
	for _, pkg := range public {
		t.Run(pkg, func(t *testing.T) {
			out, err := exec.Command("go", "doc", "-all", "github.com/hookline/hookline/shared/"+pkg).CombinedOutput()
			if err != nil {
				t.Fatalf("go doc: %v\n%s", err, out)
			}
			var decls []string
			block := "" // "const" or "var" inside a parenthesised block
			for line := range strings.Lines(string(out)) {
				line = strings.TrimRight(line, "\n")
				switch {
				case line == "const (" || line == "var (":
					block = strings.TrimSuffix(line, " (")
				case block != "" && line == ")":
					block = ""
				case block != "":
					// One name per line of the block, as "const Name".
					if f := strings.Fields(line); len(f) > 0 && line[0] == '\t' && f[0] != "//" {
						decls = append(decls, block+" "+f[0])
					}
				default:
					for _, kw := range []string{"func ", "type ", "var ", "const "} {
						if strings.HasPrefix(line, kw) {
							decls = append(decls, line)
						}
					}
				}
			}
			got := []byte(strings.Join(decls, "\n") + "\n")
			path := filepath.Join("testdata", pkg+".txt")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("the public API of shared/%s changed:\n--- want (%s)\n%s--- got\n%s", pkg, path, want, got)
			}
		})
	}
}
