package main

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// unit says how a figure is printed.
type unit int

const (
	perSecond unit = iota // 12,345/s
	millis                // 12.3 ms, 2.34 s
	count                 // 12
	decimal               // 1.23
	bytesUnit             // 312 B
	percent               // 97%
	micros                // 123 µs
)

// row is one line of the table: a figure for hookline beside its baseline.
type row struct {
	fig      int
	name     string
	unit     unit
	hook     float64
	baseName string
	base     float64
	// noRatio leaves the ratio out, for counts whose ratio means nothing
	// (keys out of order, lost items).
	noRatio bool
}

// format prints v in unit u.
func (u unit) format(v float64) string {
	switch u {
	case perSecond:
		return thousands(int64(math.Round(v))) + "/s"
	case millis:
		switch {
		case v >= 1000:
			return fmt.Sprintf("%.2f s", v/1000)
		case v >= 100:
			return fmt.Sprintf("%.0f ms", v)
		case v >= 10:
			return fmt.Sprintf("%.1f ms", v)
		}
		return fmt.Sprintf("%.2f ms", v)
	case count:
		return thousands(int64(math.Round(v)))
	case bytesUnit:
		return fmt.Sprintf("%.0f B", v)
	case percent:
		return fmt.Sprintf("%.0f%%", v)
	case micros:
		return fmt.Sprintf("%.0f µs", v)
	}
	return fmt.Sprintf("%.2f", v)
}

// ratio is hookline over baseline.
func (r row) ratio() string {
	switch {
	case r.noRatio:
		return ""
	case r.base == 0 && r.hook == 0:
		return "="
	case r.base == 0:
		return "-"
	}
	return fmt.Sprintf("%.2fx", r.hook/r.base)
}

// printTable writes rows as an aligned table: names to the left, numbers
// to the right.
func printTable(w io.Writer, rows []row) {
	head := [6]string{"fig", "figure", "hookline", "baseline", "", "ratio"}
	cells := [][6]string{head}
	for _, r := range rows {
		cells = append(cells, [6]string{strconv.Itoa(r.fig), r.name, r.unit.format(r.hook), r.baseName, r.unit.format(r.base), r.ratio()})
	}
	var width [6]int
	for _, c := range cells {
		for i, v := range c {
			width[i] = max(width[i], len(v))
		}
	}
	right := [6]bool{false, false, true, false, true, true}
	for n, c := range cells {
		var b strings.Builder
		for i, v := range c {
			if i > 0 {
				b.WriteString("  ")
			}
			pad := strings.Repeat(" ", width[i]-len(v))
			if right[i] {
				b.WriteString(pad + v)
			} else {
				b.WriteString(v + pad)
			}
		}
		fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
		if n == 0 {
			fmt.Fprintln(w, strings.Repeat("-", len(strings.TrimRight(b.String(), " "))))
		}
	}
}

// thousands prints n with comma separators.
func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// quantiles returns the p50 and p99 of ds in milliseconds; 0, 0 for none.
func quantiles(ds []time.Duration) (p50, p99 float64) {
	if len(ds) == 0 {
		return 0, 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	at := func(p float64) float64 {
		i := int(math.Ceil(p*float64(len(s)))) - 1
		return float64(s[min(max(i, 0), len(s)-1)]) / float64(time.Millisecond)
	}
	return at(0.50), at(0.99)
}

// ms prints a duration in milliseconds for the summary.
func ms(v float64) string { return millis.format(v) }

// us is d in microseconds, for a micros row.
func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
