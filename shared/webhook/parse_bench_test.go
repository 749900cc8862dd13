package webhook

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// benchBody returns a typical webhook body of at least size bytes: an order
// with customer, line items (strings with escapes and non-ASCII text,
// integers, decimals, booleans, nulls, nested objects) repeated until it is
// large enough.
func benchBody(size int) []byte {
	var b strings.Builder
	b.WriteString(`{"id":"evt_1NbVq2","code":"order.created","created":1717171717,"data":{"customer_id":"cus_4242",` +
		`"order":{"id":"ord_9f8e7d6c","total":1250.5,"currency":"EUR","paid":true,"note":null}`)
	for i := 0; b.Len()+2 < size; i++ {
		if i == 0 {
			b.WriteString(`,"items":[`)
		} else {
			b.WriteString(`,`)
		}
		fmt.Fprintf(&b, `{"sku":"SKU-%05d","name":"Caf\u00e9 cr\u00e8me \"deluxe\" — größe %d","qty":%d,"price":%d.99,`+
			`"tags":["gift","sale"],"dims":{"w":12.5,"h":-3e2,"d":0},"active":false,"ref":null}`, i, i%7, i%5+1, 10+i)
		if b.Len()+2 >= size {
			b.WriteString(`]`)
		}
	}
	b.WriteString(`}}`)
	return []byte(b.String())
}

// timeReference returns parseReference's time per call on body: the fastest
// of rounds of at least 50ms over at least half a second, so that when the
// machine is busy the ratio errs in the reference's favour. (testing.Benchmark
// cannot be used: it waits for the running benchmark to finish.)
func timeReference(tb testing.TB, body []byte, ptr string) time.Duration {
	best := time.Duration(1<<63 - 1)
	n := 1
	for total := time.Duration(0); total < 500*time.Millisecond; {
		start := time.Now()
		for range n {
			if _, err := parseReference(body, ptr); err != nil {
				tb.Fatal(err)
			}
		}
		d := time.Since(start)
		if d < 50*time.Millisecond {
			n *= 2
			continue
		}
		total += d
		best = min(best, d/time.Duration(n))
	}
	return best
}

// BenchmarkParse reports Parse's throughput (MB/s) on a typical small body, a
// 4 KiB body and a 256 KiB body, beside that of parseReference measured in the
// same run (ref-MB/s), and how many times faster Parse is (x-ref).
func BenchmarkParse(b *testing.B) {
	const ptr = "/data/customer_id"
	for _, size := range []struct {
		name string
		n    int
	}{{"200B", 200}, {"4KiB", 4 << 10}, {"256KiB", 256 << 10}} {
		body := benchBody(size.n)
		if _, err := Parse(body, ptr); err != nil {
			b.Fatalf("%s body: %v", size.name, err)
		}
		b.Run(size.name, func(b *testing.B) {
			refPerOp := float64(timeReference(b, body, ptr).Nanoseconds())
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Parse(body, ptr); err != nil {
					b.Fatal(err)
				}
			}
			perOp := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
			b.ReportMetric(float64(len(body))/refPerOp*1e3, "ref-MB/s")
			b.ReportMetric(refPerOp/perOp, "x-ref")
		})
	}
}
