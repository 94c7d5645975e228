// Package config parses and validates the driver's command line. Every flag
// has an environment fallback so a DaemonSet can set either; a bad value is
// reported with the flag's name before anything is served.
package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/labels"

	"github.com/meshcsi/meshcsi/libs/logging"
)

// DefaultDriverName is the CSI driver name used when --driver-name is unset.
const DefaultDriverName = "csi.meshcsi.io"

// DefaultKubeletDir is the kubelet's root directory when --kubelet-dir is unset.
const DefaultKubeletDir = "/var/lib/kubelet"

// DefaultHTTPAddress serves metrics and health on every interface.
const DefaultHTTPAddress = ":9809"

// DefaultSocketWait bounds how long a publish waits for a source's socket
// (--source-socket) before it answers Unavailable and the kubelet retries.
const DefaultSocketWait = 30 * time.Second

// ErrInvalid marks a configuration the driver refuses to start with.
var ErrInvalid = errors.New("invalid configuration")

// ValidDriverName applies the CSI spec's plugin name rule: 2-63
// characters, letters, digits, '-', '.', '_', starting with a letter and
// ending with a letter or digit. (Plain code, not a regexp: compiling
// regexps at start-up costs more than the whole check.)
func ValidDriverName(s string) bool {
	if len(s) < 2 || len(s) > 63 {
		return false
	}
	if last := s[len(s)-1]; !isLetter(s[0]) || !isLetter(last) && !isDigit(last) {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !isLetter(c) && !isDigit(c) && c != '-' && c != '.' && c != '_' {
			return false
		}
	}
	return true
}

// IsSourceName reports whether s is a DNS label (lower-case letters,
// digits and '-', 1-63 characters, alphanumeric at both ends): a source
// name can never look like a path.
func IsSourceName(s string) bool {
	if len(s) == 0 || len(s) > 63 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < 'a' || c > 'z') && !isDigit(c) && c != '-' {
			return false
		}
	}
	return true
}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
func isDigit(c byte) bool  { return c >= '0' && c <= '9' }

// Source is one admin-configured directory a pod may ask for by name.
type Source struct {
	// Name is what pods put in volumeAttributes.source.
	Name string
	// Dir is the absolute host directory bind-mounted into the pod.
	Dir string
	// Socket, when set, is the file name (no '/') of the socket inside Dir
	// that a publish waits for (--source-socket).
	Socket string
	// Namespaces, when set, lists the namespaces whose pods may use the
	// source (--source-namespaces).
	Namespaces []string
	// NamespaceSelector, when set, is a label selector (labels.Parse syntax)
	// a pod's namespace may match instead (--source-namespace-selector).
	NamespaceSelector string
}

// Restricted reports whether the source is limited to some namespaces.
func (s Source) Restricted() bool { return len(s.Namespaces) > 0 || s.NamespaceSelector != "" }

// Config is the validated configuration.
type Config struct {
	// Endpoint is the path of the CSI Unix socket.
	Endpoint string
	// DriverName is the CSI driver name.
	DriverName string
	// NodeID is reported by NodeGetInfo.
	NodeID string
	// Sources are the publishable directories, sorted by name.
	Sources []Source
	// DefaultSource names the source used when a volume names none; empty
	// means a volume must name one.
	DefaultSource string
	// KubeletDir is the kubelet's root directory.
	KubeletDir string
	// HTTPAddress serves /metrics, /healthz and /readyz; empty disables it.
	HTTPAddress string
	// SocketWait bounds the wait for a source's socket (--socket-wait).
	SocketWait time.Duration
	// Logging holds --log-level and --log-format.
	Logging logging.Config
}

// NeedsNamespaces reports whether a source has a namespace selector, so
// the driver must read namespaces from the API server.
func (c Config) NeedsNamespaces() bool {
	return slices.ContainsFunc(c.Sources, func(s Source) bool { return s.NamespaceSelector != "" })
}

// PodsDir is the directory below which every target must lie.
func (c Config) PodsDir() string { return filepath.Join(c.KubeletDir, "pods") }

// RegistrationSocket is where the kubelet's plugin watcher finds the driver.
func (c Config) RegistrationSocket() string {
	return filepath.Join(c.KubeletDir, "plugins_registry", c.DriverName+"-reg.sock")
}

// Env names the environment variable read for each flag that is not set on
// the command line.
var Env = map[string]string{
	"endpoint":                  "CSI_ENDPOINT",
	"driver-name":               "MESHCSI_DRIVER_NAME",
	"node-id":                   "NODE_NAME",
	"source":                    "MESHCSI_SOURCES",
	"source-socket":             "MESHCSI_SOURCE_SOCKETS",
	"source-namespaces":         "MESHCSI_SOURCE_NAMESPACES",
	"source-namespace-selector": "MESHCSI_SOURCE_NAMESPACE_SELECTORS",
	"socket-wait":               "MESHCSI_SOCKET_WAIT",
	"default-source":            "MESHCSI_DEFAULT_SOURCE",
	"kubelet-dir":               "MESHCSI_KUBELET_DIR",
	"http-address":              "MESHCSI_HTTP_ADDRESS",
	"log-level":                 "MESHCSI_LOG_LEVEL",
	"log-format":                "MESHCSI_LOG_FORMAT",
}

type sourceList []string

func (s *sourceList) String() string     { return strings.Join(*s, ",") }
func (s *sourceList) Set(v string) error { *s = append(*s, v); return nil }

// listSep separates the entries of a repeatable flag in its environment
// variable: ',' for --source, ';' for the per-source options whose values
// hold commas themselves (namespace lists, label selectors).
var listSep = map[string]string{
	"source":                    ",",
	"source-socket":             ";",
	"source-namespaces":         ";",
	"source-namespace-selector": ";",
}

// Parse reads args (without the program name) and, for each flag not given,
// its environment variable through getenv. MESHCSI_SOURCES holds
// comma-separated NAME=DIR pairs; the per-source options' variables hold
// semicolon-separated NAME=VALUE pairs. Usage and errors go to out.
func Parse(args []string, getenv func(string) string, out io.Writer) (Config, error) {
	fs := flag.NewFlagSet("meshcsi-driver", flag.ContinueOnError)
	fs.SetOutput(out)
	var (
		c                                    Config
		sources, sockets, nsLists, selectors sourceList
	)
	fs.StringVar(&c.Endpoint, "endpoint", "", "CSI socket: a path or unix:///path (default <kubelet-dir>/plugins/<driver-name>/csi.sock)")
	fs.StringVar(&c.DriverName, "driver-name", DefaultDriverName, "CSI driver name")
	fs.StringVar(&c.NodeID, "node-id", "", "node ID reported to the kubelet (required)")
	fs.Var(&sources, "source", "NAME=DIR publishable source directory (repeatable, at least one)")
	fs.Var(&sockets, "source-socket", "NAME=FILE: publish of source NAME waits for the socket FILE (a name inside its DIR) to accept connections (repeatable)")
	fs.Var(&nsLists, "source-namespaces", "NAME=NS1,NS2: only pods in these namespaces may use source NAME (repeatable)")
	fs.Var(&selectors, "source-namespace-selector", "NAME=SELECTOR: pods in namespaces matching this label selector may use source NAME (repeatable; needs read access to namespaces)")
	fs.DurationVar(&c.SocketWait, "socket-wait", DefaultSocketWait, "how long a publish waits for a --source-socket before it answers Unavailable")
	fs.StringVar(&c.DefaultSource, "default-source", "", "source used when a volume names none (default: the only source, if there is one)")
	fs.StringVar(&c.KubeletDir, "kubelet-dir", DefaultKubeletDir, "kubelet root directory")
	fs.StringVar(&c.HTTPAddress, "http-address", DefaultHTTPAddress, "address for /metrics, /healthz and /readyz; empty disables")
	fs.StringVar(&c.Logging.Level, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&c.Logging.Format, "log-format", "json", "json or console")
	if err := fs.Parse(args); err != nil {
		return Config{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("%w: unexpected argument %q", ErrInvalid, fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] || envErr != nil {
			return
		}
		v := getenv(Env[f.Name])
		if v == "" {
			return
		}
		if sep, ok := listSep[f.Name]; ok {
			for _, p := range strings.Split(v, sep) {
				if p = strings.TrimSpace(p); p != "" {
					_ = f.Value.Set(p)
				}
			}
			return
		}
		if err := f.Value.Set(v); err != nil {
			envErr = fmt.Errorf("%w: --%s (from %s): %w", ErrInvalid, f.Name, Env[f.Name], err)
		}
	})
	if envErr != nil {
		return Config{}, envErr
	}
	for _, s := range sources {
		name, dir, ok := strings.Cut(s, "=")
		if !ok {
			return Config{}, fmt.Errorf("%w: --source %q: want NAME=DIR", ErrInvalid, s)
		}
		c.Sources = append(c.Sources, Source{Name: name, Dir: dir})
	}
	for _, o := range []struct {
		flag string
		list sourceList
		set  func(*Source, string)
	}{
		{"source-socket", sockets, func(s *Source, v string) { s.Socket = v }},
		{"source-namespaces", nsLists, func(s *Source, v string) {
			for _, ns := range strings.Split(v, ",") {
				if ns = strings.TrimSpace(ns); ns != "" {
					s.Namespaces = append(s.Namespaces, ns)
				}
			}
		}},
		{"source-namespace-selector", selectors, func(s *Source, v string) { s.NamespaceSelector = v }},
	} {
		seen := map[string]bool{}
		for _, kv := range o.list {
			name, val, ok := strings.Cut(kv, "=")
			if !ok || val == "" {
				return Config{}, fmt.Errorf("%w: --%s %q: want NAME=VALUE", ErrInvalid, o.flag, kv)
			}
			i := slices.IndexFunc(c.Sources, func(s Source) bool { return s.Name == name })
			if i < 0 {
				return Config{}, fmt.Errorf("%w: --%s: %q is not a configured --source", ErrInvalid, o.flag, name)
			}
			if seen[name] {
				return Config{}, fmt.Errorf("%w: --%s: source %q given twice", ErrInvalid, o.flag, name)
			}
			seen[name] = true
			o.set(&c.Sources[i], val)
		}
	}
	return c, c.normalize()
}

// normalize fills defaults and validates; it is the single place that knows
// the rules, so tests build a Config by hand and call Validate.
func (c *Config) normalize() error {
	if len(c.Sources) == 1 && c.DefaultSource == "" {
		c.DefaultSource = c.Sources[0].Name
	}
	if c.Endpoint == "" && ValidDriverName(c.DriverName) && filepath.IsAbs(c.KubeletDir) {
		c.Endpoint = filepath.Join(c.KubeletDir, "plugins", c.DriverName, "csi.sock")
	}
	if e, ok := strings.CutPrefix(c.Endpoint, "unix://"); ok {
		c.Endpoint = e
	} else if e, ok := strings.CutPrefix(c.Endpoint, "unix:"); ok {
		c.Endpoint = e
	}
	sort.Slice(c.Sources, func(i, j int) bool { return c.Sources[i].Name < c.Sources[j].Name })
	return c.Validate()
}

// Validate reports the first setting the driver cannot start with, naming
// its flag.
func (c Config) Validate() error {
	bad := func(flag, format string, a ...any) error {
		return fmt.Errorf("%w: --%s: %s", ErrInvalid, flag, fmt.Sprintf(format, a...))
	}
	if !ValidDriverName(c.DriverName) {
		return bad("driver-name", "%q is not a valid CSI driver name (letters, digits, '-', '.', '_'; at most 63)", c.DriverName)
	}
	if c.NodeID == "" {
		return bad("node-id", "required (or set %s)", Env["node-id"])
	}
	if len(c.NodeID) > 256 {
		return bad("node-id", "longer than 256 bytes")
	}
	if !cleanAbs(c.KubeletDir) {
		return bad("kubelet-dir", "%q must be an absolute, clean path", c.KubeletDir)
	}
	if !cleanAbs(c.Endpoint) {
		return bad("endpoint", "%q must be an absolute path or unix:///absolute/path", c.Endpoint)
	}
	if len(c.Endpoint) > 107 {
		return bad("endpoint", "%q is longer than a Unix socket path may be (107 bytes)", c.Endpoint)
	}
	if len(c.RegistrationSocket()) > 107 {
		return bad("kubelet-dir", "registration socket %q is longer than a Unix socket path may be (107 bytes)", c.RegistrationSocket())
	}
	if len(c.Sources) == 0 {
		return bad("source", "at least one NAME=DIR is required (or set %s)", Env["source"])
	}
	for i, s := range c.Sources {
		if !IsSourceName(s.Name) {
			return bad("source", "name %q must be a DNS label (lower-case letters, digits, '-'; at most 63)", s.Name)
		}
		if !cleanAbs(s.Dir) || s.Dir == "/" {
			return bad("source", "%s: directory %q must be an absolute, clean path other than /", s.Name, s.Dir)
		}
		if i > 0 && c.Sources[i-1].Name == s.Name {
			return bad("source", "name %q given twice", s.Name)
		}
		for _, o := range c.Sources[:i] {
			if o.Dir == s.Dir {
				return bad("source", "%s and %s name the same directory %q", o.Name, s.Name, s.Dir)
			}
		}
		if under(s.Dir, c.KubeletDir) || under(c.KubeletDir, s.Dir) {
			return bad("source", "%s: directory %q overlaps --kubelet-dir %q", s.Name, s.Dir, c.KubeletDir)
		}
		if s.Socket != "" && (strings.ContainsAny(s.Socket, "/\x00") || s.Socket == "." || s.Socket == ".." || len(s.Socket) > 255) {
			return bad("source-socket", "%s: %q must be a file name inside the source directory (no '/')", s.Name, s.Socket)
		}
		if s.Socket != "" && len(s.Dir)+1+len(s.Socket) > 107 {
			return bad("source-socket", "%s: %q is longer than a Unix socket path may be (107 bytes)", s.Name, filepath.Join(s.Dir, s.Socket))
		}
		for _, ns := range s.Namespaces {
			if !IsSourceName(ns) {
				return bad("source-namespaces", "%s: %q is not a namespace name (a DNS label)", s.Name, ns)
			}
		}
		if s.NamespaceSelector != "" {
			if _, err := labels.Parse(s.NamespaceSelector); err != nil {
				return bad("source-namespace-selector", "%s: %q: %v", s.Name, s.NamespaceSelector, err)
			}
		}
	}
	if c.SocketWait <= 0 && slices.ContainsFunc(c.Sources, func(s Source) bool { return s.Socket != "" }) {
		return bad("socket-wait", "%v must be positive", c.SocketWait)
	}
	if c.DefaultSource != "" && !slices.ContainsFunc(c.Sources, func(s Source) bool { return s.Name == c.DefaultSource }) {
		return bad("default-source", "%q is not a configured --source", c.DefaultSource)
	}
	if c.HTTPAddress != "" {
		if _, _, err := net.SplitHostPort(c.HTTPAddress); err != nil {
			return bad("http-address", "%q: %v", c.HTTPAddress, err)
		}
	}
	if err := c.Logging.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return nil
}

func cleanAbs(p string) bool { return filepath.IsAbs(p) && filepath.Clean(p) == p }

// under reports whether p is dir or below it.
func under(p, dir string) bool {
	return p == dir || strings.HasPrefix(p, strings.TrimSuffix(dir, "/")+"/")
}
