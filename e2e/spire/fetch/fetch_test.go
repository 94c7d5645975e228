package fetch

import (
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	log := `spire-workload: starting
{"time":"2026-01-02T03:04:05Z","seq":1,"error":"rpc error: code = PermissionDenied desc = no identity issued"}
not json {"seq":9}
{"time":"2026-01-02T03:04:06Z","seq":2,"spiffe_id":"spiffe://meshcsi.test/ns/a/sa/b","serial":"42","expires":"2026-01-02T04:04:06Z"}
{"broken":
`
	got := Parse(log)
	if len(got) != 2 {
		t.Fatalf("Parse: %d attempts, want 2: %+v", len(got), got)
	}
	if got[0].OK() || got[0].Seq != 1 {
		t.Errorf("attempt 1: %+v, want a failed attempt 1", got[0])
	}
	want := Attempt{
		Time: time.Date(2026, 1, 2, 3, 4, 6, 0, time.UTC), Seq: 2, SPIFFEID: "spiffe://meshcsi.test/ns/a/sa/b",
		Serial: "42", Expires: time.Date(2026, 1, 2, 4, 4, 6, 0, time.UTC),
	}
	if !got[1].OK() || got[1] != want {
		t.Errorf("attempt 2: %+v, want %+v", got[1], want)
	}
}
