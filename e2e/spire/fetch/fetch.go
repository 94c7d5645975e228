// Package fetch is the log format of the spire-workload command: one JSON
// line per attempt to fetch an X509-SVID from the SPIRE agent. The command
// writes it; the e2e case and the demo read it back from the pod's log. It is
// a package of its own so the workload binary links nothing of Kubernetes.
package fetch

import (
	"bufio"
	"encoding/json"
	"strings"
	"time"
)

// Attempt is one fetch of the workload's X509-SVID.
type Attempt struct {
	// Time is when the attempt started (UTC).
	Time time.Time `json:"time"`
	// Seq counts attempts from 1 within one run of the workload.
	Seq int `json:"seq"`
	// SPIFFEID is the SVID's ID when the fetch succeeded.
	SPIFFEID string `json:"spiffe_id,omitempty"`
	// Serial is the SVID certificate's serial number (decimal).
	Serial string `json:"serial,omitempty"`
	// Expires is the SVID certificate's NotAfter.
	Expires time.Time `json:"expires,omitzero"`
	// Error is the Workload API's error when the fetch failed.
	Error string `json:"error,omitempty"`
}

// OK reports whether the attempt got an SVID.
func (a Attempt) OK() bool { return a.Error == "" && a.SPIFFEID != "" }

// Parse reads the attempts in a log, skipping lines that are not attempts.
func Parse(log string) []Attempt {
	var out []Attempt
	sc := bufio.NewScanner(strings.NewReader(log))
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if !strings.HasPrefix(line, "{") {
			continue
		}
		var a Attempt
		if err := json.Unmarshal([]byte(line), &a); err != nil || a.Seq == 0 {
			continue
		}
		out = append(out, a)
	}
	return out
}
