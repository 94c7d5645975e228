package config

import (
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestParse(t *testing.T) {
	c, err := Parse([]string{"--node-id=n1", "--source", "spire=/run/spire/sockets", "--source=mesh=/run/mesh"}, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		Endpoint:    "/var/lib/kubelet/plugins/csi.meshcsi.io/csi.sock",
		DriverName:  DefaultDriverName,
		NodeID:      "n1",
		Sources:     []Source{{Name: "mesh", Dir: "/run/mesh"}, {Name: "spire", Dir: "/run/spire/sockets"}},
		KubeletDir:  DefaultKubeletDir,
		HTTPAddress: DefaultHTTPAddress,
		SocketWait:  DefaultSocketWait,
	}
	want.Logging.Level, want.Logging.Format = "info", "json"
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("Parse =\n%+v\nwant\n%+v", c, want)
	}
	if c.RegistrationSocket() != "/var/lib/kubelet/plugins_registry/csi.meshcsi.io-reg.sock" {
		t.Fatalf("RegistrationSocket = %s", c.RegistrationSocket())
	}
}

func TestParseSourceOptions(t *testing.T) {
	c, err := Parse([]string{"--node-id=n", "--source=spire=/run/spire", "--source=mesh=/run/mesh",
		"--source-socket=spire=agent.sock", "--source-namespaces=spire=a, b",
		"--socket-wait=5s"}, env(map[string]string{
		"MESHCSI_SOURCE_NAMESPACES":          "mesh=ignored",
		"MESHCSI_SOURCE_NAMESPACE_SELECTORS": "mesh=team=y,tier!=z; spire=team=x,env in (p)",
	}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	want := []Source{
		{Name: "mesh", Dir: "/run/mesh", NamespaceSelector: "team=y,tier!=z"},
		{Name: "spire", Dir: "/run/spire", Socket: "agent.sock", Namespaces: []string{"a", "b"}, NamespaceSelector: "team=x,env in (p)"},
	}
	if !reflect.DeepEqual(c.Sources, want) || c.SocketWait != 5*time.Second || !c.NeedsNamespaces() {
		t.Fatalf("Parse = %+v, %v", c.Sources, c.SocketWait)
	}
	if !c.Sources[1].Restricted() {
		t.Fatal("spire is not restricted")
	}
	c, err = Parse([]string{"--node-id=n", "--source=a=/run/a"}, env(nil), io.Discard)
	if err != nil || c.SocketWait != DefaultSocketWait || c.NeedsNamespaces() || c.Sources[0].Restricted() {
		t.Fatalf("defaults = %+v, %v", c, err)
	}
}

func TestParseEnvFallbacks(t *testing.T) {
	c, err := Parse([]string{"--log-level=debug"}, env(map[string]string{
		"CSI_ENDPOINT":           "unix:///csi/csi.sock",
		"MESHCSI_DRIVER_NAME":    "sockets.example.com",
		"NODE_NAME":              "node-a",
		"MESHCSI_SOURCES":        "a=/run/a, b=/run/b",
		"MESHCSI_DEFAULT_SOURCE": "b",
		"MESHCSI_KUBELET_DIR":    "/data/kubelet",
		"MESHCSI_HTTP_ADDRESS":   "127.0.0.1:9000",
		"MESHCSI_LOG_LEVEL":      "error",
		"MESHCSI_LOG_FORMAT":     "console",
	}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.Endpoint != "/csi/csi.sock" || c.DriverName != "sockets.example.com" || c.NodeID != "node-a" ||
		len(c.Sources) != 2 || c.DefaultSource != "b" || c.KubeletDir != "/data/kubelet" ||
		c.HTTPAddress != "127.0.0.1:9000" || c.Logging.Level != "debug" || c.Logging.Format != "console" {
		t.Fatalf("Parse = %+v", c)
	}
	// A flag wins over its variable, also for --source.
	c, err = Parse([]string{"--node-id=x", "--source=c=/run/c"}, env(map[string]string{"NODE_NAME": "y", "MESHCSI_SOURCES": "a=/run/a"}), io.Discard)
	if err != nil || c.NodeID != "x" || len(c.Sources) != 1 || c.Sources[0].Name != "c" || c.DefaultSource != "c" {
		t.Fatalf("Parse = %+v, %v", c, err)
	}
}

func TestParseRejects(t *testing.T) {
	base := []string{"--node-id=n", "--source=a=/run/a"}
	tests := []struct {
		name string
		args []string
		env  map[string]string
		flag string
	}{
		{"no node id", []string{"--source=a=/run/a"}, nil, "--node-id"},
		{"no source", []string{"--node-id=n"}, nil, "--source"},
		{"source without =", append(base, "--source=b"), nil, "--source"},
		{"source name is a path", append(base, "--source=../b=/run/b"), nil, "--source"},
		{"source name upper case", append(base, "--source=B=/run/b"), nil, "--source"},
		{"source dir relative", append(base, "--source=b=run/b"), nil, "--source"},
		{"source dir unclean", append(base, "--source=b=/run/../b"), nil, "--source"},
		{"source dir root", append(base, "--source=b=/"), nil, "--source"},
		{"source twice", append(base, "--source=a=/run/b"), nil, "--source"},
		{"two sources, one dir", append(base, "--source=b=/run/a"), nil, "--source"},
		{"source inside kubelet dir", append(base, "--source=b=/var/lib/kubelet/pods"), nil, "--source"},
		{"unknown default", append(base, "--default-source=zz"), nil, "--default-source"},
		{"bad driver name", append(base, "--driver-name=-bad-"), nil, "--driver-name"},
		{"relative kubelet dir", append(base, "--kubelet-dir=var/lib/kubelet"), nil, "--kubelet-dir"},
		{"relative endpoint", append(base, "--endpoint=csi.sock"), nil, "--endpoint"},
		{"tcp endpoint", append(base, "--endpoint=tcp://1.2.3.4:5"), nil, "--endpoint"},
		{"long endpoint", append(base, "--endpoint=/"+strings.Repeat("x", 120)), nil, "--endpoint"},
		{"bad http address", append(base, "--http-address=9809"), nil, "--http-address"},
		{"bad log level", append(base, "--log-level=loud"), nil, "--log-level"},
		{"bad log format", append(base, "--log-format=xml"), nil, "--log-format"},
		{"bad env log level", base, map[string]string{"MESHCSI_LOG_LEVEL": "loud"}, "--log-level"},
		{"socket of an unknown source", append(base, "--source-socket=b=x.sock"), nil, "--source-socket"},
		{"socket with a slash", append(base, "--source-socket=a=../x.sock"), nil, "--source-socket"},
		{"socket dot dot", append(base, "--source-socket=a=.."), nil, "--source-socket"},
		{"socket path too long", append(base, "--source-socket=a="+strings.Repeat("s", 110)), nil, "--source-socket"},
		{"socket twice", append(base, "--source-socket=a=x", "--source-socket=a=y"), nil, "--source-socket"},
		{"socket without value", append(base, "--source-socket=a"), nil, "--source-socket"},
		{"zero socket wait", append(base, "--source-socket=a=x", "--socket-wait=0s"), nil, "--socket-wait"},
		{"namespaces of an unknown source", append(base, "--source-namespaces=b=x"), nil, "--source-namespaces"},
		{"namespace not a DNS label", append(base, "--source-namespaces=a=Bad_NS"), nil, "--source-namespaces"},
		{"bad selector", append(base, "--source-namespace-selector=a=team in"), nil, "--source-namespace-selector"},
		{"bad env selector", base, map[string]string{"MESHCSI_SOURCE_NAMESPACE_SELECTORS": "a=x in"}, "--source-namespace-selector"},
		{"unknown flag", append(base, "--nope"), nil, "-nope"},
		{"positional argument", append(base, "extra"), nil, "extra"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(tt.args, env(tt.env), io.Discard)
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.flag) {
				t.Fatalf("Parse error = %v, want ErrInvalid naming %s", err, tt.flag)
			}
		})
	}
}

func TestNameRules(t *testing.T) {
	for s, want := range map[string]bool{
		"csi.meshcsi.io": true, "": false, "a1": true, "A_b-c.d": true, "a": false, "1abc": false, "abc-": false,
		"ab/c": false, strings.Repeat("a", 63): true, strings.Repeat("a", 64): false,
	} {
		if got := ValidDriverName(s); got != want {
			t.Errorf("ValidDriverName(%q) = %v", s, got)
		}
	}
	for s, want := range map[string]bool{
		"spire-agent": true, "a": true, "0": true, "-a": false, "a-": false, "A": false, "a.b": false,
		"a/b": false, "..": false, "": false, strings.Repeat("a", 63): true, strings.Repeat("a", 64): false,
	} {
		if got := IsSourceName(s); got != want {
			t.Errorf("IsSourceName(%q) = %v", s, got)
		}
	}
}
