package telemetry

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/hookline/hookline/internal/clock"
)

// goldenAt stamps the golden lines.
var goldenAt = time.UnixMilli(1_763_900_000_123)

// goldenLines builds each line of testdata/emf: the shapes the functions
// write (ingest's Emit with a roll-up set, a drain's Aggregate of counts
// and observations), each with the values Parse must read back.
var goldenLines = []struct {
	file  string
	write func(*Emitter) error
	want  Line
}{
	{
		file: "emit.json",
		write: func(e *Emitter) error {
			sets := [][]string{{"Lane", "Route"}, {}}
			return e.Emit(goldenAt, map[string]string{"Lane": "quick", "Route": "post.create"},
				Metric{Name: "Accepted", Unit: Count, Value: 1, Sets: sets},
				Metric{Name: "Duplicate", Unit: Count, Value: 0, Sets: sets},
				Metric{Name: "Latency", Unit: Milliseconds, Value: 2.5, Sets: [][]string{{}}})
		},
		want: Line{Timestamp: goldenAt, Dims: map[string]string{"Stack": "prod", "Lane": "quick", "Route": "post.create"},
			Metrics: []ParsedMetric{
				{Namespace: "hookline", Name: "Accepted", Unit: Count, Values: []float64{1}, Sets: [][]string{{"Stack", "Lane", "Route"}, {"Stack"}}},
				{Namespace: "hookline", Name: "Duplicate", Unit: Count, Values: []float64{0}, Sets: [][]string{{"Stack", "Lane", "Route"}, {"Stack"}}},
				{Namespace: "hookline", Name: "Latency", Unit: Milliseconds, Values: []float64{2.5}, Sets: [][]string{{"Stack"}}},
			}},
	},
	{
		file: "aggregate.json",
		write: func(e *Emitter) error {
			a := e.Aggregate(map[string]string{"Lane": "slow", "Route": "order.paid"}, []string{"Lane", "Route"}, []string{"Lane"})
			a.Add("Handled", 1)
			a.Add("Handled", 1)
			a.Add("Retried", 0)
			a.Observe("HandlerDuration", Milliseconds, 12)
			a.Observe("HandlerDuration", Milliseconds, 7.25)
			return a.Flush(goldenAt)
		},
		want: Line{Timestamp: goldenAt, Dims: map[string]string{"Stack": "prod", "Lane": "slow", "Route": "order.paid"},
			Metrics: []ParsedMetric{
				{Namespace: "hookline", Name: "Handled", Unit: Count, Values: []float64{2}, Sets: [][]string{{"Stack", "Lane", "Route"}, {"Stack", "Lane"}}},
				{Namespace: "hookline", Name: "Retried", Unit: Count, Values: []float64{0}, Sets: [][]string{{"Stack", "Lane", "Route"}, {"Stack", "Lane"}}},
				{Namespace: "hookline", Name: "HandlerDuration", Unit: Milliseconds, Values: []float64{12, 7.25}, Sets: [][]string{{"Stack", "Lane", "Route"}, {"Stack", "Lane"}}},
			}},
	},
}

// TestEMFGolden: each line the emitter writes is byte for byte its golden
// file in testdata/emf, and Parse reads the golden file back into the
// values it was built from. A change of the EMF encoding shows here first.
func TestEMFGolden(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "emf", "*.json"))
	if err != nil || len(files) != len(goldenLines) {
		t.Fatalf("testdata/emf holds %v (%v), want one file per golden line (%d)", files, err, len(goldenLines))
	}
	for _, g := range goldenLines {
		golden, err := os.ReadFile(filepath.Join("testdata", "emf", g.file))
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		e := New(&buf, Options{Dimensions: map[string]string{"Stack": "prod"}, Clock: clock.NewFake(goldenAt)})
		if err := g.write(e); err != nil {
			t.Fatalf("%s: %v", g.file, err)
		}
		if !bytes.Equal(buf.Bytes(), golden) {
			t.Fatalf("%s: the emitter wrote\n%s\nthe golden line is\n%s", g.file, buf.Bytes(), golden)
		}
		l, err := Parse(golden)
		if err != nil {
			t.Fatalf("%s: %v", g.file, err)
		}
		if !l.Timestamp.Equal(g.want.Timestamp) {
			t.Fatalf("%s: timestamp %v, want %v", g.file, l.Timestamp, g.want.Timestamp)
		}
		l.Timestamp = g.want.Timestamp
		if !reflect.DeepEqual(*l, g.want) {
			t.Fatalf("%s parses to\n%+v\nwant\n%+v", g.file, *l, g.want)
		}
	}
}
