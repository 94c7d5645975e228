//go:build integration

package test

import (
	"fmt"
	"os"
	"path/filepath"
)

// The accounts whose requests the scale benchmark counts: the sentinel of
// release "scale" and the naive poller. They authenticate with their own
// ServiceAccount tokens (not by impersonation: the audit policy sees the
// authenticated user), and only their requests are audited.
const (
	scaleRelease = "scale"
	scaleDriver  = "scale.csi.meshcsi.io"
	pollerNS     = "naive"
	pollerSA     = "poller"
	sentinelUser = "system:serviceaccount:" + scaleRelease + "-system:" + scaleRelease + "-sentinel"
	pollerUser   = "system:serviceaccount:" + pollerNS + ":" + pollerSA
)

var auditLogPath string

// benchAuditArgs writes an audit policy that logs only the two measured
// accounts' requests (one event each, when the response completes) and
// returns the kube-apiserver flags for it.
func benchAuditArgs(dir string) ([]string, error) {
	policy := fmt.Sprintf(`apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived, ResponseStarted]
rules:
- level: Metadata
  users: [%q, %q]
- level: None
`, sentinelUser, pollerUser)
	p := filepath.Join(dir, "audit-policy.yaml")
	if err := os.WriteFile(p, []byte(policy), 0o600); err != nil {
		return nil, fmt.Errorf("failed to write the audit policy: %w", err)
	}
	auditLogPath = filepath.Join(dir, "audit.log")
	return []string{"--audit-policy-file=" + p, "--audit-log-path=" + auditLogPath, "--audit-log-format=json", "--audit-log-mode=blocking"}, nil
}
