// Package config turns the sentinel's command line and environment into a
// validated Config, so every subcommand sees the same settings and a mistake
// is reported once, naming the flag that carries it.
package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/meshcsi/meshcsi/libs/logging"
)

// Subcommands the binary accepts.
const (
	CmdRun     = "run"
	CmdPlan    = "plan"
	CmdHandoff = "handoff"
	// CmdPrepareUpgrade is the chart's pre-upgrade and pre-rollback hook:
	// it deletes the suspended, never-started sentinel Job, so Helm can
	// create it anew with the new chart's pod template.
	CmdPrepareUpgrade = "prepare-upgrade"
)

// Defaults that are not derived from other settings.
const (
	DefaultDriverName     = "csi.meshcsi.io"
	DefaultPartOf         = "meshcsi"
	DefaultReportInterval = 30 * time.Second
)

// ErrInvalid marks a configuration error (exit code 1).
var ErrInvalid = errors.New("invalid configuration")

// ErrHelp is returned when -h/--help was asked for; usage has been printed.
var ErrHelp = flag.ErrHelp

// Config is everything a subcommand needs to know from its caller.
type Config struct {
	// Command is run, plan, handoff or prepare-upgrade.
	Command string
	// Kubeconfig is a kubeconfig path; empty means in-cluster.
	Kubeconfig string
	// Namespace is the install namespace of the release.
	Namespace string
	// Release is the Helm release name (app.kubernetes.io/instance).
	Release string
	// DriverName is the CSI driver name whose volumes block removal.
	DriverName string
	// PartOf is the app.kubernetes.io/part-of label value.
	PartOf string
	// PlanConfigMap names the ConfigMap that records the plan.
	PlanConfigMap string
	// JobName names the sentinel Job (Events target, deleted last).
	JobName string
	// InstallMarker names the install-marker ConfigMap (re-install signal).
	InstallMarker string
	// LeaseName names the Lease that keeps two sentinels from fighting.
	LeaseName string
	// Identity is this process's name in the Lease (defaults to the hostname).
	Identity string
	// Timeout bounds the wait for blocking pods; zero waits forever.
	Timeout time.Duration
	// ReportInterval is the period of "waiting for N pods" reports.
	ReportInterval time.Duration
	// RemovalGuard names the removal guard's parameter, a RemovalGuard
	// object in the install namespace, whose spec.removing the hand-off sets
	// to true.
	RemovalGuard string
	// RemovalGuardGroup is the API group of the release's RemovalGuard kind
	// (its own CustomResourceDefinition).
	RemovalGuardGroup string
	// Output is table or json (plan only).
	Output string
	// Log holds --log-level and --log-format.
	Log logging.Config
}

// Usage is printed for -h and for a missing subcommand.
const Usage = `usage: meshcsi-sentinel run|plan|handoff|prepare-upgrade [flags]

  run              wait until no pod uses the driver, then delete the release's objects
  plan             print what run would delete and which pods block it now; deletes nothing
  handoff          record the plan ConfigMap, raise the removal guard and resume the
                   suspended sentinel Job (pre-delete hook)
  prepare-upgrade  delete the sentinel Job if it is suspended and has never started,
                   so Helm creates it anew from the new chart (pre-upgrade and
                   pre-rollback hook); a started Job is kept and the upgrade stops
`

// Parse reads args (without the program name) and falls back to getenv for
// the flags that have an environment variable. It validates the result.
func Parse(args []string, getenv func(string) string, stderr io.Writer) (Config, error) {
	var c Config
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			_, _ = io.WriteString(stderr, Usage)
			return c, ErrHelp
		}
		_, _ = io.WriteString(stderr, Usage)
		return c, fmt.Errorf("%w: missing subcommand (run, plan, handoff or prepare-upgrade)", ErrInvalid)
	}
	c.Command = args[0]
	switch c.Command {
	case CmdRun, CmdPlan, CmdHandoff, CmdPrepareUpgrade:
	default:
		_, _ = io.WriteString(stderr, Usage)
		return c, fmt.Errorf("%w: unknown subcommand %q (want run, plan, handoff or prepare-upgrade)", ErrInvalid, c.Command)
	}
	fs := flag.NewFlagSet("meshcsi-sentinel "+c.Command, flag.ContinueOnError)
	fs.SetOutput(stderr)
	env := func(name, def string) string {
		if v := getenv(name); v != "" {
			return v
		}
		return def
	}
	fs.StringVar(&c.Kubeconfig, "kubeconfig", env("KUBECONFIG", ""), "kubeconfig file; empty means in-cluster config [KUBECONFIG]")
	fs.StringVar(&c.Namespace, "namespace", env("POD_NAMESPACE", ""), "install namespace of the release [POD_NAMESPACE]")
	fs.StringVar(&c.Release, "release", env("MESHCSI_RELEASE", ""), "Helm release name, the app.kubernetes.io/instance label [MESHCSI_RELEASE]")
	fs.StringVar(&c.DriverName, "driver-name", env("MESHCSI_DRIVER_NAME", DefaultDriverName), "CSI driver name [MESHCSI_DRIVER_NAME]")
	fs.StringVar(&c.PartOf, "part-of", env("MESHCSI_PART_OF", DefaultPartOf), "app.kubernetes.io/part-of label value [MESHCSI_PART_OF]")
	fs.StringVar(&c.PlanConfigMap, "plan-configmap", env("MESHCSI_PLAN_CONFIGMAP", ""), "plan ConfigMap name (default <release>-sentinel-plan) [MESHCSI_PLAN_CONFIGMAP]")
	fs.StringVar(&c.JobName, "job-name", env("MESHCSI_JOB_NAME", ""), "sentinel Job name (default <release>-sentinel) [MESHCSI_JOB_NAME]")
	fs.StringVar(&c.InstallMarker, "install-marker", env("MESHCSI_INSTALL_MARKER", ""), "install-marker ConfigMap name (default <release>-install) [MESHCSI_INSTALL_MARKER]")
	fs.StringVar(&c.LeaseName, "lease", env("MESHCSI_LEASE", ""), "Lease name (default <release>-sentinel) [MESHCSI_LEASE]")
	fs.StringVar(&c.Identity, "identity", env("POD_NAME", ""), "holder identity in the Lease (default hostname) [POD_NAME]")
	timeout := env("MESHCSI_TIMEOUT", "0")
	report := env("MESHCSI_REPORT_INTERVAL", DefaultReportInterval.String())
	var timeoutS, reportS string
	fs.StringVar(&timeoutS, "timeout", timeout, "give up waiting for blocking pods after this long (exit 2); 0 waits forever [MESHCSI_TIMEOUT]")
	fs.StringVar(&reportS, "report-interval", report, "period of progress reports (log line and Event) [MESHCSI_REPORT_INTERVAL]")
	// The name of the first charts, whose parameter was a ConfigMap; a
	// sentinel Job rendered by them still passes it. Defined first:
	// the flag below sets the shared default.
	fs.StringVar(&c.RemovalGuard, "removal-guard-configmap", "", "deprecated name of --removal-guard")
	fs.StringVar(&c.RemovalGuard, "removal-guard", env("MESHCSI_REMOVAL_GUARD", ""), "removal guard's parameter, a RemovalGuard object (default <release>-removing) [MESHCSI_REMOVAL_GUARD]")
	fs.StringVar(&c.RemovalGuardGroup, "removal-guard-group", env("MESHCSI_REMOVAL_GUARD_GROUP", ""), "API group of the RemovalGuard kind (default <release>.<namespace>.meshcsi.io) [MESHCSI_REMOVAL_GUARD_GROUP]")
	fs.StringVar(&c.Output, "o", "table", "plan: output format, table or json")
	fs.StringVar(&c.Log.Level, "log-level", env("MESHCSI_LOG_LEVEL", "info"), "debug, info, warn or error [MESHCSI_LOG_LEVEL]")
	fs.StringVar(&c.Log.Format, "log-format", env("MESHCSI_LOG_FORMAT", "json"), "json or console [MESHCSI_LOG_FORMAT]")
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return c, ErrHelp
		}
		return c, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("%w: unexpected arguments %q", ErrInvalid, fs.Args())
	}
	var err error
	if c.Timeout, err = time.ParseDuration(timeoutS); err != nil {
		return c, fmt.Errorf("%w: --timeout %q: %w", ErrInvalid, timeoutS, err)
	}
	if c.ReportInterval, err = time.ParseDuration(reportS); err != nil {
		return c, fmt.Errorf("%w: --report-interval %q: %w", ErrInvalid, reportS, err)
	}
	c.Defaults()
	return c, c.Validate()
}

// Defaults fills the names derived from the release.
func (c *Config) Defaults() {
	if c.Release == "" {
		return
	}
	if c.PlanConfigMap == "" {
		c.PlanConfigMap = c.Release + "-sentinel-plan"
	}
	if c.JobName == "" {
		c.JobName = c.Release + "-sentinel"
	}
	if c.InstallMarker == "" {
		c.InstallMarker = c.Release + "-install"
	}
	if c.LeaseName == "" {
		c.LeaseName = c.Release + "-sentinel"
	}
	if c.RemovalGuard == "" {
		c.RemovalGuard = c.Release + "-removing"
	}
	if c.RemovalGuardGroup == "" && c.Namespace != "" {
		c.RemovalGuardGroup = c.Release + "." + c.Namespace + ".meshcsi.io"
	}
	if c.Output == "" {
		c.Output = "table"
	}
}

// Validate rejects missing or contradictory settings, naming the flag.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, a ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, a...)...))
	}
	if c.Namespace == "" {
		bad("--namespace (or POD_NAMESPACE) is required")
	} else if msgs := validation.IsDNS1123Label(c.Namespace); len(msgs) > 0 {
		bad("--namespace %q: %s", c.Namespace, strings.Join(msgs, "; "))
	}
	if c.Release == "" {
		bad("--release (or MESHCSI_RELEASE) is required")
	} else if msgs := validation.IsValidLabelValue(c.Release); len(msgs) > 0 {
		bad("--release %q: %s", c.Release, strings.Join(msgs, "; "))
	}
	if c.DriverName == "" {
		bad("--driver-name must not be empty")
	} else if msgs := validation.IsValidLabelValue(c.DriverName); len(msgs) > 0 {
		bad("--driver-name %q: %s", c.DriverName, strings.Join(msgs, "; "))
	}
	if c.PartOf == "" {
		bad("--part-of must not be empty")
	} else if msgs := validation.IsValidLabelValue(c.PartOf); len(msgs) > 0 {
		bad("--part-of %q: %s", c.PartOf, strings.Join(msgs, "; "))
	}
	for _, n := range []struct{ flag, value string }{
		{"--plan-configmap", c.PlanConfigMap}, {"--job-name", c.JobName}, {"--install-marker", c.InstallMarker}, {"--lease", c.LeaseName},
		{"--removal-guard", c.RemovalGuard}, {"--removal-guard-group", c.RemovalGuardGroup},
	} {
		if n.value == "" {
			continue
		}
		if msgs := validation.IsDNS1123Subdomain(n.value); len(msgs) > 0 {
			bad("%s %q: %s", n.flag, n.value, strings.Join(msgs, "; "))
		}
	}
	if c.Timeout < 0 {
		bad("--timeout %s must not be negative", c.Timeout)
	}
	if c.ReportInterval <= 0 {
		bad("--report-interval %s must be positive", c.ReportInterval)
	}
	if c.Output != "table" && c.Output != "json" {
		bad("-o %q: want table or json", c.Output)
	}
	if err := c.Log.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("%w: %w", ErrInvalid, err))
	}
	return errors.Join(errs...)
}
