package deploy

import (
	"bytes"
	"debug/buildinfo"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestMakeBuild runs `make build` into a temporary BIN and checks what Lambda
// will run: for each function a static linux/arm64 executable named bootstrap,
// built from functions/<fn> with CGO off and the lambda.norpc tag, and
// hookline.yaml beside it. It compiles the three functions (a minute or so).
func TestMakeBuild(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("make"); err != nil {
		t.Fatalf("make is needed to test the build: %v", err)
	}
	bin := t.TempDir()
	cmd := exec.CommandContext(t.Context(), "make", "build", "BIN="+bin)
	cmd.Dir = ".."
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make build BIN=%s: %v\n%s", bin, err, out)
	}

	wantConfig, err := os.ReadFile(configPath)
	if err != nil {
		t.Fatalf("read %s: %v", configPath, err)
	}
	for _, fn := range []string{"ingest", "scheduler", "drain"} {
		dir := filepath.Join(bin, fn)
		checkLambdaBinary(t, filepath.Join(dir, "bootstrap"), "github.com/hookline/hookline/functions/"+fn)
		got, err := os.ReadFile(filepath.Join(dir, "hookline.yaml"))
		if err != nil {
			t.Fatalf("%s: %v", fn, err)
		}
		if !bytes.Equal(got, wantConfig) {
			t.Fatalf("%s/hookline.yaml differs from %s", fn, configPath)
		}
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatalf("%s: %v", dir, err)
		}
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		if want := []string{"bootstrap", "hookline.yaml"}; !slices.Equal(names, want) {
			t.Fatalf("%s holds %v, want %v", dir, names, want)
		}
	}
}

// checkLambdaBinary checks that path is a statically linked linux/arm64
// executable built from package pkg as the provided.al2023 runtime needs it.
func checkLambdaBinary(t *testing.T, path, pkg string) {
	t.Helper()
	info, err := os.Stat(path)
	if err != nil {
		t.Fatalf("%v", err)
	}
	if info.Mode()&0o111 == 0 {
		t.Fatalf("%s: not executable (mode %v)", path, info.Mode())
	}

	f, err := elf.Open(path)
	if err != nil {
		t.Fatalf("%s: not an ELF file: %v", path, err)
	}
	defer f.Close()
	if f.Machine != elf.EM_AARCH64 || f.Class != elf.ELFCLASS64 {
		t.Fatalf("%s: machine %v, class %v; want EM_AARCH64, ELFCLASS64 (arm64)", path, f.Machine, f.Class)
	}
	if f.OSABI != elf.ELFOSABI_NONE && f.OSABI != elf.ELFOSABI_LINUX {
		t.Fatalf("%s: OS ABI %v, want Linux (ELFOSABI_NONE or ELFOSABI_LINUX)", path, f.OSABI)
	}
	if f.Type != elf.ET_EXEC {
		t.Fatalf("%s: ELF type %v, want ET_EXEC (a static, non-PIE executable)", path, f.Type)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Fatalf("%s: has a %v program header: dynamically linked", path, p.Type)
		}
	}
	if libs, err := f.ImportedLibraries(); err != nil || len(libs) > 0 {
		t.Fatalf("%s: needs shared libraries %v (%v)", path, libs, err)
	}

	bi, err := buildinfo.ReadFile(path)
	if err != nil {
		t.Fatalf("%s: no Go build information: %v", path, err)
	}
	if bi.Path != pkg {
		t.Fatalf("%s: built from %s, want %s", path, bi.Path, pkg)
	}
	settings := map[string]string{}
	for _, s := range bi.Settings {
		settings[s.Key] = s.Value
	}
	for key, want := range map[string]string{"GOOS": "linux", "GOARCH": "arm64", "CGO_ENABLED": "0"} {
		if settings[key] != want {
			t.Fatalf("%s: built with %s=%q, want %q", path, key, settings[key], want)
		}
	}
	if tags := strings.Split(settings["-tags"], ","); !slices.Contains(tags, "lambda.norpc") {
		t.Fatalf("%s: built with -tags %q, want lambda.norpc", path, settings["-tags"])
	}
}
