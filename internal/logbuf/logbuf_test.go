package logbuf

import (
	"fmt"
	"slices"
	"sync"
	"testing"
)

// TestConcurrentWrites: lines written by many goroutines at once all
// arrive whole.
func TestConcurrentWrites(t *testing.T) {
	var b Buffer
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 100 {
				fmt.Fprintf(&b, "g%d line %d\n", g, i)
			}
		})
	}
	wg.Wait()
	lines := b.Lines()
	if len(lines) != 800 {
		t.Fatalf("%d lines, want 800", len(lines))
	}
	for g := range 8 {
		for i := range 100 {
			if want := fmt.Sprintf("g%d line %d", g, i); !slices.Contains(lines, want) {
				t.Fatalf("line %q missing", want)
			}
		}
	}
}

// TestReset: a reset buffer holds only what is written after it.
func TestReset(t *testing.T) {
	var b Buffer
	fmt.Fprintln(&b, "before")
	b.Reset()
	fmt.Fprintln(&b, "after")
	if got := b.String(); got != "after\n" {
		t.Fatalf("String() = %q, want %q", got, "after\n")
	}
}
