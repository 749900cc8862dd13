package telemetry

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
)

func TestEmitWritesEMF(t *testing.T) {
	var buf bytes.Buffer
	e := NewEmitter(&buf)
	at := time.UnixMilli(1_763_900_000_000)
	if err := e.Emit(at, map[string]string{"Lane": "quick"}, Metric{"Ready", "Count", 3}, Metric{"OldestReadyAge", "Milliseconds", 1500}); err != nil {
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
