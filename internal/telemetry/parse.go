package telemetry

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"
)

// Line is one EMF line, as Parse reads it.
type Line struct {
	Timestamp time.Time
	// Dims are the line's dimension values (the string members named by
	// a dimension set).
	Dims map[string]string
	// Metrics are the line's metrics in the order of their directives,
	// each with the dimension sets and namespace of its directive.
	Metrics []ParsedMetric
}

// ParsedMetric is one metric of a parsed line.
type ParsedMetric struct {
	Namespace string
	Name      string
	Unit      string
	// Values holds the metric's value, or its values when the line carries
	// several.
	Values []float64
	Sets   [][]string
}

// Metric returns the first metric of the line named name.
func (l *Line) Metric(name string) (ParsedMetric, bool) {
	for _, m := range l.Metrics {
		if m.Name == name {
			return m, true
		}
	}
	return ParsedMetric{}, false
}

// Limits of the Embedded Metric Format.
const (
	maxDimsPerSet        = 30
	maxMetricsPerDirect  = 100
	maxNameLen           = 1024
	maxNamespaceLen      = 255
	maxDimensionValueLen = 1024
)

// validUnits are the units CloudWatch accepts.
var validUnits = map[string]bool{
	"Seconds": true, "Microseconds": true, "Milliseconds": true, "Bytes": true, "Kilobytes": true,
	"Megabytes": true, "Gigabytes": true, "Terabytes": true, "Bits": true, "Kilobits": true,
	"Megabits": true, "Gigabits": true, "Terabits": true, "Percent": true, "Count": true,
	"Bytes/Second": true, "Kilobytes/Second": true, "Megabytes/Second": true, "Gigabytes/Second": true,
	"Terabytes/Second": true, "Bits/Second": true, "Kilobits/Second": true, "Megabits/Second": true,
	"Gigabits/Second": true, "Terabits/Second": true, "Count/Second": true, "None": true,
}

// Parse reads one EMF line and checks it against the format's
// specification: an _aws object with a millisecond Timestamp and a non-empty
// CloudWatchMetrics list of directives, each with a Namespace, Dimensions
// (lists of at most 30 names of string members of the line) and Metrics
// (at most 100, each naming a member that is a number or a list of at most
// 100 numbers, with a valid unit). It returns an error wrapping ErrNotEMF
// for anything else.
func Parse(b []byte) (*Line, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrNotEMF, fmt.Sprintf(format, args...))
	}
	var root map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&root); err != nil {
		return nil, bad("not a JSON object: %v", err)
	}
	rawAWS, ok := root["_aws"]
	if !ok {
		return nil, bad("no _aws member")
	}
	var meta struct {
		Timestamp         *int64 `json:"Timestamp"`
		CloudWatchMetrics []struct {
			Namespace  *string    `json:"Namespace"`
			Dimensions [][]string `json:"Dimensions"`
			Metrics    []struct {
				Name *string `json:"Name"`
				Unit string  `json:"Unit"`
			} `json:"Metrics"`
		} `json:"CloudWatchMetrics"`
	}
	if err := json.Unmarshal(rawAWS, &meta); err != nil {
		return nil, bad("_aws: %v", err)
	}
	if meta.Timestamp == nil || *meta.Timestamp <= 0 {
		return nil, bad("_aws.Timestamp: missing or not a positive integer")
	}
	if len(meta.CloudWatchMetrics) == 0 {
		return nil, bad("_aws.CloudWatchMetrics: missing or empty")
	}
	l := &Line{Timestamp: time.UnixMilli(*meta.Timestamp), Dims: map[string]string{}}
	str := func(name string) (string, bool) {
		var s string
		raw, ok := root[name]
		return s, ok && json.Unmarshal(raw, &s) == nil
	}
	for i, d := range meta.CloudWatchMetrics {
		if d.Namespace == nil || *d.Namespace == "" || len(*d.Namespace) > maxNamespaceLen {
			return nil, bad("directive %d: Namespace missing or longer than %d", i, maxNamespaceLen)
		}
		if d.Dimensions == nil {
			return nil, bad("directive %d: no Dimensions", i)
		}
		for _, set := range d.Dimensions {
			if len(set) > maxDimsPerSet {
				return nil, bad("directive %d: a dimension set of %d names, at most %d", i, len(set), maxDimsPerSet)
			}
			for _, name := range set {
				v, ok := str(name)
				if !ok {
					return nil, bad("directive %d: dimension %q is not a string member of the line", i, name)
				}
				if v == "" || len(v) > maxDimensionValueLen {
					return nil, bad("dimension %q: value empty or longer than %d", name, maxDimensionValueLen)
				}
				l.Dims[name] = v
			}
		}
		if len(d.Metrics) == 0 || len(d.Metrics) > maxMetricsPerDirect {
			return nil, bad("directive %d: %d metrics, want 1..%d", i, len(d.Metrics), maxMetricsPerDirect)
		}
		for _, m := range d.Metrics {
			if m.Name == nil || *m.Name == "" || len(*m.Name) > maxNameLen {
				return nil, bad("directive %d: a metric without a valid Name", i)
			}
			unit := m.Unit
			if unit == "" {
				unit = None
			}
			if !validUnits[unit] {
				return nil, bad("metric %q: unit %q is not a CloudWatch unit", *m.Name, m.Unit)
			}
			raw, ok := root[*m.Name]
			if !ok {
				return nil, bad("metric %q: no member holds its value", *m.Name)
			}
			values, err := numbers(raw)
			if err != nil {
				return nil, bad("metric %q: %v", *m.Name, err)
			}
			l.Metrics = append(l.Metrics, ParsedMetric{Namespace: *d.Namespace, Name: *m.Name, Unit: unit, Values: values, Sets: d.Dimensions})
		}
	}
	return l, nil
}

// numbers reads a number or a list of 1..MaxValues numbers.
func numbers(raw json.RawMessage) ([]float64, error) {
	var one float64
	if err := json.Unmarshal(raw, &one); err == nil {
		return []float64{one}, nil
	}
	var many []float64
	if err := json.Unmarshal(raw, &many); err != nil {
		return nil, fmt.Errorf("value is neither a number nor a list of numbers")
	}
	if len(many) == 0 || len(many) > MaxValues {
		return nil, fmt.Errorf("%d values, want 1..%d", len(many), MaxValues)
	}
	return many, nil
}
