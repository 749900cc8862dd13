package lambdatest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// Binaries are built into a directory per test binary under buildRoot. A
// directory cannot be removed when its test binary exits (Go has no exit
// hook, and the packages using it may run their tests through another
// package's Main), so each test binary holds a lock on its directory while
// it runs, and the first Build of a later run removes the directories whose
// owner is gone.
const (
	// buildRootName is the directory under os.TempDir that holds the
	// per-test-binary build directories.
	buildRootName = "hookline-lambdatest"
	// buildDirPrefix starts the name of every per-test-binary directory.
	buildDirPrefix = "run-"
	// lockFileName is the lock file inside a build directory.
	lockFileName = "lock"
	// staleAfter protects a directory created a moment ago by another test
	// binary, which may not have taken its lock yet, from being reaped.
	staleAfter = time.Minute
)

var (
	buildOnce sync.Once
	buildDir  string // this test binary's build directory
	modRoot   string // the directory holding the main module's go.mod
	buildErr  error  // why buildDir or modRoot is unusable

	buildsMu sync.Mutex
	builds   = map[string]*build{} // by import path or absolute directory
)

// build is one package's build, shared by every test of the test binary.
type build struct {
	once sync.Once
	path string // the binary
	err  error  // the build failure, with the compiler's output
}

// Build compiles the main package pkg into a Lambda bootstrap binary and
// returns its path. pkg is an import path in the main module (such as
// "github.com/hookline/hookline/functions/drain") or a directory: a path
// starting with "./" or "../", relative to the test's working directory (its
// package directory), or an absolute path. A directory is how a test builds
// a main package under testdata, which import paths cannot name.
//
// The binary is built like the deployment's: from the module root with
// CGO_ENABLED=0 go build -tags lambda.norpc, for the host's GOOS and GOARCH
// (the deployment's linux/arm64 would not run here), and without VCS stamping.
// Each package is built once per test binary, however many tests ask for it,
// into a directory under os.TempDir()/hookline-lambdatest that a later test
// run removes. Callers must not modify the binary.
//
// Build fails the test, with the compiler's output, if the build fails.
func Build(tb testing.TB, pkg string) string {
	tb.Helper()
	buildOnce.Do(initBuild)
	if buildErr != nil {
		tb.Fatalf("lambdatest: build %s: %v", pkg, buildErr)
	}
	key := pkg
	if isDirPath(pkg) {
		abs, err := filepath.Abs(pkg)
		if err != nil {
			tb.Fatalf("lambdatest: build %s: %v", pkg, err)
		}
		key = abs
	}

	buildsMu.Lock()
	b, ok := builds[key]
	if !ok {
		b = &build{}
		builds[key] = b
	}
	buildsMu.Unlock()

	b.once.Do(func() { b.path, b.err = compile(key) })
	if b.err != nil {
		tb.Fatalf("lambdatest: %v", b.err)
	}
	return b.path
}

// isDirPath reports whether pkg names a directory rather than an import path.
func isDirPath(pkg string) bool {
	return filepath.IsAbs(pkg) || pkg == "." || pkg == ".." ||
		strings.HasPrefix(pkg, "./") || strings.HasPrefix(pkg, "../") ||
		strings.HasPrefix(pkg, "."+string(filepath.Separator)) ||
		strings.HasPrefix(pkg, ".."+string(filepath.Separator))
}

// initBuild finds the module root and creates this test binary's build
// directory, after removing the directories left by finished test binaries.
func initBuild() {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		buildErr = fmt.Errorf("go env GOMOD: %w", err)
		return
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		buildErr = fmt.Errorf("not inside a Go module (go env GOMOD = %q)", gomod)
		return
	}
	modRoot = filepath.Dir(gomod)

	root := filepath.Join(os.TempDir(), buildRootName)
	if err := os.MkdirAll(root, 0o755); err != nil {
		buildErr = fmt.Errorf("create build root: %w", err)
		return
	}
	reapBuildDirs(root)
	dir, err := os.MkdirTemp(root, buildDirPrefix)
	if err != nil {
		buildErr = fmt.Errorf("create build directory: %w", err)
		return
	}
	if err := holdLock(filepath.Join(dir, lockFileName)); err != nil {
		buildErr = fmt.Errorf("lock build directory: %w", err)
		return
	}
	buildDir = dir
}

// reapBuildDirs removes the build directories under root whose test binary
// has exited. Failures are ignored: a directory left behind is harmless.
func reapBuildDirs(root string) {
	entries, err := os.ReadDir(root)
	if err != nil {
		return
	}
	for _, e := range entries {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), buildDirPrefix) {
			continue
		}
		info, err := e.Info()
		if err != nil || time.Since(info.ModTime()) < staleAfter {
			continue
		}
		dir := filepath.Join(root, e.Name())
		if abandoned(filepath.Join(dir, lockFileName)) {
			_ = os.RemoveAll(dir)
		}
	}
}

// compile builds the main package pkg (an import path or an absolute
// directory) into a fresh subdirectory of buildDir.
func compile(pkg string) (string, error) {
	dir, err := os.MkdirTemp(buildDir, "bin-")
	if err != nil {
		return "", fmt.Errorf("build %s: %w", pkg, err)
	}
	bin := filepath.Join(dir, "bootstrap")
	if runtime.GOOS == "windows" {
		bin += ".exe"
	}
	cmd := exec.Command("go", "build", "-tags", "lambda.norpc", "-buildvcs=false", "-o", bin, pkg)
	cmd.Dir = modRoot
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+runtime.GOOS, "GOARCH="+runtime.GOARCH)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("build %s: %w\n%s", pkg, err, out.Bytes())
	}
	return bin, nil
}
