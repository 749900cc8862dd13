package telemetry

import (
	"bytes"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hookline/hookline/internal/clock"
)

func TestEmitWritesEMF(t *testing.T) {
	var buf bytes.Buffer
	e := NewEmitter(&buf)
	at := time.UnixMilli(1_763_900_000_000)
	if err := e.Emit(at, map[string]string{"Lane": "quick"}, Metric{Name: "Ready", Unit: "Count", Value: 3}, Metric{Name: "OldestReadyAge", Unit: "Milliseconds", Value: 1500}); err != nil {
		t.Fatal(err)
	}
	var got struct {
		AWS struct {
			Timestamp         int64
			CloudWatchMetrics []struct {
				Namespace  string
				Dimensions [][]string
				Metrics    []struct{ Name, Unit string }
			}
		} `json:"_aws"`
		Lane           string
		Ready          float64
		OldestReadyAge float64
	}
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatalf("not JSON: %v: %s", err, buf.String())
	}
	cw := got.AWS.CloudWatchMetrics
	if got.AWS.Timestamp != at.UnixMilli() || len(cw) != 1 || cw[0].Namespace != "hookline" ||
		len(cw[0].Dimensions) != 1 || cw[0].Dimensions[0][0] != "Lane" || len(cw[0].Metrics) != 2 ||
		cw[0].Metrics[1].Unit != "Milliseconds" || got.Lane != "quick" || got.Ready != 3 || got.OldestReadyAge != 1500 {
		t.Fatalf("EMF line wrong: %s", buf.String())
	}
	if bytes.Count(buf.Bytes(), []byte("\n")) != 1 {
		t.Fatalf("want exactly one line")
	}
}

// TestEmitNamespaceStackAndSets: the namespace is configurable, the fixed
// Stack dimension is in every line and every set, and metrics with other
// dimension sets get a directive of their own.
func TestEmitNamespaceStackAndSets(t *testing.T) {
	var buf bytes.Buffer
	e := New(&buf, Options{Namespace: "acme/hooks", Dimensions: map[string]string{"Stack": "prod"}})
	at := time.UnixMilli(1_763_900_000_000)
	err := e.Emit(at, map[string]string{"Lane": "quick", "Route": "post.create"},
		Metric{Name: "Accepted", Unit: Count, Value: 1, Sets: [][]string{{"Lane", "Route"}, {}}},
		Metric{Name: "Latency", Unit: Milliseconds, Values: []float64{3, 4}, Sets: [][]string{{}}},
		Metric{Name: "Duplicate", Unit: Count, Value: 0, Sets: [][]string{{"Lane", "Route"}, {}}},
	)
	if err != nil {
		t.Fatal(err)
	}
	l, err := Parse(buf.Bytes())
	if err != nil {
		t.Fatalf("%v: %s", err, buf.String())
	}
	if l.Dims["Stack"] != "prod" || l.Dims["Lane"] != "quick" || l.Dims["Route"] != "post.create" || !l.Timestamp.Equal(at) {
		t.Fatalf("line %+v", l)
	}
	acc, _ := l.Metric("Accepted")
	lat, _ := l.Metric("Latency")
	dup, _ := l.Metric("Duplicate")
	want := [][]string{{"Stack", "Lane", "Route"}, {"Stack"}}
	if acc.Namespace != "acme/hooks" || !slices.EqualFunc(acc.Sets, want, slices.Equal) || !slices.EqualFunc(dup.Sets, want, slices.Equal) {
		t.Fatalf("Accepted/Duplicate sets %v %v, want %v", acc.Sets, dup.Sets, want)
	}
	if !slices.EqualFunc(lat.Sets, [][]string{{"Stack"}}, slices.Equal) || !slices.Equal(lat.Values, []float64{3, 4}) {
		t.Fatalf("Latency %+v", lat)
	}
	if n := strings.Count(buf.String(), `"Namespace"`); n != 2 {
		t.Fatalf("%d directives, want 2 (one per dimension sets): %s", n, buf.String())
	}
}

func TestEmitRefusesBadMetrics(t *testing.T) {
	e := NewEmitter(&bytes.Buffer{})
	now := time.Now()
	for _, m := range []Metric{
		{Name: "Lane", Value: 1},
		{Name: "X", Sets: [][]string{{"Tenant"}}},
		{Name: "X", Values: make([]float64, MaxValues+1)},
	} {
		if err := e.Emit(now, map[string]string{"Lane": "quick"}, m); err == nil {
			t.Errorf("Emit accepted %+v", m)
		}
	}
	var nilEmitter *Emitter
	if err := nilEmitter.Emit(now, nil, Metric{Name: "X"}); err != nil {
		t.Fatal(err)
	}
	nilEmitter.Aggregate(nil).Add("X", 1) // no panic
}

// TestAggregate: counts add up and are written even when zero, values
// stay values, and a metric reaching MaxValues values flushes by itself.
func TestAggregate(t *testing.T) {
	var buf bytes.Buffer
	clk := clock.NewFake(time.UnixMilli(1_763_900_000_000))
	e := New(&buf, Options{Dimensions: map[string]string{"Stack": "s"}, Clock: clk})
	a := e.Aggregate(map[string]string{"Lane": "quick", "Route": "r"}, []string{"Lane", "Route"}, []string{"Lane"})
	a.Add("Handled", 1)
	a.Add("Handled", 1)
	a.Add("Retried", 0)
	a.Observe("HandlerDuration", Milliseconds, 5)
	a.Observe("HandlerDuration", Milliseconds, 7)
	if err := a.Flush(clk.Now()); err != nil {
		t.Fatal(err)
	}
	l, err := Parse(bytes.TrimSpace(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	h, _ := l.Metric("Handled")
	r, _ := l.Metric("Retried")
	d, _ := l.Metric("HandlerDuration")
	if !slices.Equal(h.Values, []float64{2}) || !slices.Equal(r.Values, []float64{0}) || !slices.Equal(d.Values, []float64{5, 7}) || len(h.Sets) != 2 {
		t.Fatalf("line %s", buf.String())
	}
	buf.Reset()
	for i := range MaxValues {
		a.Observe("Lag", Milliseconds, float64(i))
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 1 {
		t.Fatalf("%d lines after %d values, want 1 written by itself", len(lines), MaxValues)
	}
	l, err = Parse([]byte(lines[0]))
	if err != nil {
		t.Fatal(err)
	}
	if lag, _ := l.Metric("Lag"); len(lag.Values) != MaxValues {
		t.Fatalf("Lag has %d values", len(lag.Values))
	}
	if h, _ := l.Metric("Handled"); h.Values[0] != 0 {
		t.Fatalf("Handled %v after a flush, want 0", h.Values)
	}
}

func TestParseRefusesWhatIsNotEMF(t *testing.T) {
	for _, s := range []string{
		`not json`,
		`{"a":1}`,
		`{"_aws":{"CloudWatchMetrics":[]},"x":1}`,
		`{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"n","Dimensions":[["D"]],"Metrics":[{"Name":"x"}]}]},"x":1}`,
		`{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"n","Dimensions":[[]],"Metrics":[{"Name":"x"}]}]},"x":"1"}`,
		`{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"n","Dimensions":[[]],"Metrics":[{"Name":"x","Unit":"Furlongs"}]}]},"x":1}`,
		`{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Dimensions":[[]],"Metrics":[{"Name":"x"}]}]},"x":1}`,
	} {
		if _, err := Parse([]byte(s)); !errors.Is(err, ErrNotEMF) {
			t.Errorf("Parse(%s) = %v, want ErrNotEMF", s, err)
		}
	}
}
