// Package telemetry writes metrics as CloudWatch Embedded Metric Format
// (EMF) lines: JSON objects on stdout that CloudWatch Logs turns into
// metrics, with no API call and no agent in the Lambda function.
//
// Every line carries the emitter's fixed dimensions (the Stack, so two
// deployments in one account do not merge) in every dimension set. Callers
// add bounded dimensions only: a lane, a route (an event code of the
// configuration), an error code; never a tenant, a key or an id, which
// would make a metric per customer.
package telemetry

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/hookline/hookline/internal/clock"
)

// NamespaceDefault is the CloudWatch namespace of hookline's metrics unless
// the configuration names another (metrics.namespace).
const NamespaceDefault = "hookline"

// Units of metrics.
const (
	Count        = "Count"
	Milliseconds = "Milliseconds"
	None         = "None"
)

// MaxValues is the most values one metric may carry in one EMF line.
const MaxValues = 100

// Metric is one metric of an EMF line.
type Metric struct {
	Name string
	// Unit is Count, Milliseconds, ...; "" means None.
	Unit  string
	Value float64
	// Values, when not empty, are several observations of the metric (at
	// most MaxValues); Value is then not used.
	Values []float64
	// Sets are the dimension sets the metric is published under, each a
	// list of names of the line's dimensions. Nil: one set of all of them.
	// The emitter's fixed dimensions are added to every set.
	Sets [][]string
}

// Options configure an Emitter. Zero values select the documented defaults.
type Options struct {
	// Namespace is the CloudWatch namespace. Default NamespaceDefault.
	Namespace string
	// Dimensions are added to every line and to every dimension set, such
	// as {"Stack": "prod"}. Default none.
	Dimensions map[string]string
	// Clock stamps the lines that Aggregate writes by itself. Default the
	// wall clock.
	Clock clock.Clock
}

// Emitter writes EMF lines to one writer, one line per call. It is safe for
// concurrent use. A nil *Emitter writes nothing, so callers need no check.
type Emitter struct {
	mu    sync.Mutex
	w     io.Writer
	ns    string
	fixed map[string]string
	names []string // of fixed, sorted
	clk   clock.Clock
}

// New returns an Emitter writing to w (os.Stdout in Lambda).
func New(w io.Writer, opt Options) *Emitter {
	e := &Emitter{w: w, ns: cmp.Or(opt.Namespace, NamespaceDefault), fixed: maps.Clone(opt.Dimensions), clk: opt.Clock}
	if e.clk == nil {
		e.clk = clock.Real{}
	}
	e.names = slices.Sorted(maps.Keys(e.fixed))
	return e
}

// NewEmitter returns an Emitter writing to w in the default namespace with
// no fixed dimension.
func NewEmitter(w io.Writer) *Emitter { return New(w, Options{}) }

// Namespace returns the emitter's namespace.
func (e *Emitter) Namespace() string {
	if e == nil {
		return ""
	}
	return e.ns
}

// directive is one entry of _aws.CloudWatchMetrics.
type directive struct {
	Namespace  string              `json:"Namespace"`
	Dimensions [][]string          `json:"Dimensions"`
	Metrics    []map[string]string `json:"Metrics"`
}

// Emit writes one EMF line at time t with the given dimension values and
// metrics. Metrics with the same dimension sets share a directive.
func (e *Emitter) Emit(t time.Time, dims map[string]string, metrics ...Metric) error {
	if e == nil || len(metrics) == 0 {
		return nil
	}
	line := make(map[string]any, len(e.fixed)+len(dims)+len(metrics)+1)
	for k, v := range dims {
		line[k] = v
	}
	for k, v := range e.fixed {
		line[k] = v
	}
	own := slices.Sorted(maps.Keys(dims))
	var dirs []*directive
	bySets := map[string]*directive{}
	for _, m := range metrics {
		if _, taken := line[m.Name]; taken {
			return fmt.Errorf("telemetry: metric %q: the name is taken by a dimension or another metric", m.Name)
		}
		if len(m.Values) > MaxValues {
			return fmt.Errorf("telemetry: metric %q: %d values, at most %d per line", m.Name, len(m.Values), MaxValues)
		}
		sets := m.Sets
		if sets == nil {
			sets = [][]string{own}
		}
		full := make([][]string, len(sets))
		for i, s := range sets {
			for _, name := range s {
				if _, ok := dims[name]; !ok {
					return fmt.Errorf("telemetry: metric %q: dimension %q has no value", m.Name, name)
				}
			}
			full[i] = append(slices.Clone(e.names), s...)
		}
		id, _ := json.Marshal(full)
		d := bySets[string(id)]
		if d == nil {
			d = &directive{Namespace: e.ns, Dimensions: full}
			bySets[string(id)] = d
			dirs = append(dirs, d)
		}
		d.Metrics = append(d.Metrics, map[string]string{"Name": m.Name, "Unit": cmp.Or(m.Unit, None)})
		if len(m.Values) > 0 {
			line[m.Name] = m.Values
		} else {
			line[m.Name] = m.Value
		}
	}
	line["_aws"] = map[string]any{"Timestamp": t.UnixMilli(), "CloudWatchMetrics": dirs}
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

// Aggregate collects the metrics of one set of dimension values, such as
// those of the items a drain handles for one key, and writes them as one
// line when flushed: counts add up, observations are kept as values. A line
// is written by itself when a metric reaches MaxValues values. It is safe
// for concurrent use; a nil *Aggregate records nothing.
type Aggregate struct {
	e    *Emitter
	dims map[string]string
	sets [][]string

	mu    sync.Mutex
	order []string
	m     map[string]*aggMetric
}

type aggMetric struct {
	unit   string
	count  bool
	sum    float64
	values []float64
}

// Aggregate returns an empty aggregate of metrics with dimension values
// dims, published under sets (nil: one set of all of dims). A nil Emitter
// returns a nil Aggregate.
func (e *Emitter) Aggregate(dims map[string]string, sets ...[]string) *Aggregate {
	if e == nil {
		return nil
	}
	return &Aggregate{e: e, dims: maps.Clone(dims), sets: sets, m: map[string]*aggMetric{}}
}

func (a *Aggregate) metric(name, unit string, count bool) *aggMetric {
	m := a.m[name]
	if m == nil {
		m = &aggMetric{unit: unit, count: count}
		a.m[name] = m
		a.order = append(a.order, name)
	}
	return m
}

// Add adds n to the count name (unit Count); Add(name, 0) makes the count
// appear, as 0, in the next line.
func (a *Aggregate) Add(name string, n float64) {
	if a == nil {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.metric(name, Count, true).sum += n
}

// Observe records one value of the metric name.
func (a *Aggregate) Observe(name, unit string, v float64) {
	if a == nil {
		return
	}
	a.mu.Lock()
	m := a.metric(name, unit, false)
	m.values = append(m.values, v)
	full := len(m.values) >= MaxValues
	a.mu.Unlock()
	if full {
		_ = a.Flush(a.e.clk.Now())
	}
}

// Flush writes what was collected since the last flush as one line at time
// t, and starts over: counts from zero, with no values. Counts that were
// declared are written even when zero.
func (a *Aggregate) Flush(t time.Time) error {
	if a == nil {
		return nil
	}
	a.mu.Lock()
	var ms []Metric
	for _, name := range a.order {
		m := a.m[name]
		switch {
		case m.count:
			ms = append(ms, Metric{Name: name, Unit: m.unit, Value: m.sum, Sets: a.sets})
			m.sum = 0
		case len(m.values) > 0:
			ms = append(ms, Metric{Name: name, Unit: m.unit, Values: m.values, Sets: a.sets})
			m.values = nil
		}
	}
	a.mu.Unlock()
	if len(ms) == 0 {
		return nil
	}
	return a.e.Emit(t, a.dims, ms...)
}

// ErrNotEMF reports a line that is not an EMF line.
var ErrNotEMF = errors.New("telemetry: not an EMF line")
