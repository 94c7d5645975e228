// Package report tells the user what the sentinel waits for and what it did:
// one log line per report interval listing up to MaxListed blocking pods, the
// same text as a Kubernetes Event on the sentinel's Job (so `kubectl describe
// job` shows it), and one machine-readable summary line at the end.
package report

import (
	"fmt"
	"strings"
	"time"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/record"

	"github.com/meshcsi/meshcsi/services/sentinel/internal/remove"
	"github.com/meshcsi/meshcsi/services/sentinel/internal/tracker"
)

// MaxListed bounds how many blockers one report names.
const MaxListed = 20

// Event reasons the sentinel emits on its Job.
const (
	ReasonWaiting   = "WaitingForPods"
	ReasonRemoving  = "Removing"
	ReasonStoodDown = "StoodDown"
	ReasonTimedOut  = "TimedOut"
	ReasonFinished  = "Finished"
	// ReasonRefused (Warning): the API server refused a delete; removal stopped.
	ReasonRefused = "RemovalRefused"
	// ReasonCSIDriverExists (Warning): a CSIDriver of the driver's name
	// exists again; the DaemonSet stays until it is gone.
	ReasonCSIDriverExists = "CSIDriverExists"
	// ReasonWaitingForCheck: a pre-delete check (say, node mounts) blocks.
	ReasonWaitingForCheck = "WaitingForCheck"
)

// Reporter writes progress to the log and, when it has a target, as Events.
type Reporter struct {
	log      *zap.Logger
	recorder record.EventRecorder
	target   runtime.Object
}

// New returns a Reporter. recorder and target may be nil (no Events, e.g.
// when run outside its Job); log is required.
func New(log *zap.Logger, recorder record.EventRecorder, target runtime.Object) *Reporter {
	if recorder == nil || target == nil {
		recorder, target = nil, nil
	}
	return &Reporter{log: log, recorder: recorder, target: target}
}

// maxEventMessage keeps Event messages under the API server's 1 KiB note limit.
const maxEventMessage = 1000

// WaitingMessage is the Event text for blockers: up to MaxListed pods, as
// many as fit in one Event, then how many more there are.
func WaitingMessage(blockers []tracker.Blocker) string {
	head := fmt.Sprintf("waiting for %d pods", len(blockers))
	var items []string
	used := len(head)
	for i, bl := range blockers {
		if i == MaxListed {
			break
		}
		item := bl.String()
		// Leave room for "; and NNNNN more".
		if used+len(item)+2+20 > maxEventMessage {
			break
		}
		items = append(items, item)
		used += len(item) + 2
	}
	msg := head
	if len(items) > 0 {
		msg += ": " + strings.Join(items, "; ")
	}
	if more := len(blockers) - len(items); more > 0 && len(items) > 0 {
		msg += fmt.Sprintf("; and %d more", more)
	}
	return msg
}

// Waiting reports the current blockers.
func (r *Reporter) Waiting(blockers []tracker.Blocker, waited time.Duration) {
	listed := blockers
	if len(listed) > MaxListed {
		listed = listed[:MaxListed]
	}
	names := make([]string, len(listed))
	for i, b := range listed {
		names[i] = b.String()
	}
	r.log.Info(fmt.Sprintf("waiting for %d pods", len(blockers)),
		zap.Int("blocking", len(blockers)), zap.Strings("blockers", names),
		zap.Duration("waited", waited.Round(time.Second)))
	r.event(corev1.EventTypeNormal, ReasonWaiting, WaitingMessage(blockers))
}

// Event records one Event on the target (and nothing if there is none).
func (r *Reporter) Event(eventType, reason, message string) {
	r.event(eventType, reason, message)
}

func (r *Reporter) event(eventType, reason, message string) {
	if r.recorder == nil {
		return
	}
	if len(message) > maxEventMessage {
		message = strings.ToValidUTF8(message[:maxEventMessage], "")
	}
	r.recorder.Event(r.target, eventType, reason, message)
}

// Summary is the final machine-readable account of one run.
type Summary struct {
	// Result is done, stood-down, timed-out, refused or failed.
	Result    string            `json:"result"`
	Release   string            `json:"release"`
	Namespace string            `json:"namespace"`
	Driver    string            `json:"driver"`
	Waited    string            `json:"waited"`
	Deleted   []string          `json:"deleted"`
	Gone      []string          `json:"gone"`
	Replaced  []string          `json:"replaced"`
	Refused   []string          `json:"refused,omitempty"`
	Adopted   []string          `json:"adopted,omitempty"`
	Blockers  []tracker.Blocker `json:"blockers,omitempty"`
	Message   string            `json:"message,omitempty"`
}

// Add files one removal result into the summary.
func (s *Summary) Add(r remove.Result) {
	switch r.Outcome {
	case remove.Deleted:
		s.Deleted = append(s.Deleted, r.Object.String())
	case remove.Gone:
		s.Gone = append(s.Gone, r.Object.String())
	case remove.Replaced:
		s.Replaced = append(s.Replaced, r.Object.String())
	case remove.Adopted:
		s.Adopted = append(s.Adopted, r.Object.String())
	}
}

// Final logs the summary as one line whose "summary" field is a JSON object.
func (r *Reporter) Final(s Summary) {
	r.log.Info("sentinel finished", zap.String("result", s.Result), zap.Any("summary", s))
}
