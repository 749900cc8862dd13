// Package telemetry writes metrics as CloudWatch Embedded Metric Format
// (EMF) lines: JSON objects on stdout that CloudWatch Logs turns into
// metrics, with no API call and no agent in the Lambda function.
package telemetry

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"
)

// Namespace is the CloudWatch namespace of hookline's metrics.
const Namespace = "hookline"

// Metric is one value of an EMF line.
type Metric struct {
	Name  string
	Unit  string // "Count", "Milliseconds", ...; "" means "None"
	Value float64
}

// Emitter writes EMF lines to one writer, one line per call. It is safe for
// concurrent use.
type Emitter struct {
	mu sync.Mutex
	w  io.Writer
}

// NewEmitter returns an Emitter writing to w (os.Stdout in Lambda).
func NewEmitter(w io.Writer) *Emitter { return &Emitter{w: w} }

// Emit writes one EMF line at time t with the given dimensions (one
// dimension set of all of them) and metrics.
func (e *Emitter) Emit(t time.Time, dims map[string]string, metrics ...Metric) error {
	names := make([]string, 0, len(dims))
	for k := range dims {
		names = append(names, k)
	}
	slices.Sort(names)
	defs := make([]map[string]string, len(metrics))
	line := make(map[string]any, len(dims)+len(metrics)+1)
	for k, v := range dims {
		line[k] = v
	}
	for i, m := range metrics {
		unit := m.Unit
		if unit == "" {
			unit = "None"
		}
		defs[i] = map[string]string{"Name": m.Name, "Unit": unit}
		line[m.Name] = m.Value
	}
	line["_aws"] = map[string]any{
		"Timestamp": t.UnixMilli(),
		"CloudWatchMetrics": []any{map[string]any{
			"Namespace":  Namespace,
			"Dimensions": [][]string{names},
			"Metrics":    defs,
		}},
	}
	b, err := json.Marshal(line)
	if err != nil {
		return fmt.Errorf("telemetry: %w", err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, err := e.w.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("telemetry: %w", err)
	}
	return nil
}
