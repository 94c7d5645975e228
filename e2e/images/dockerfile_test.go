package images

import (
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/meshcsi/meshcsi/libs/kubeharness/image"
)

// instruction is one Dockerfile instruction with continuations joined.
type instruction struct {
	cmd, args string
}

type stage struct {
	from   string
	instrs []instruction
}

func parseDockerfile(t *testing.T, path string) []stage {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var stages []stage
	var cur strings.Builder
	flush := func() {
		line := strings.TrimSpace(cur.String())
		cur.Reset()
		if line == "" {
			return
		}
		cmd, args, _ := strings.Cut(line, " ")
		cmd = strings.ToUpper(cmd)
		if cmd == "FROM" {
			stages = append(stages, stage{from: strings.TrimSpace(args)})
			return
		}
		if len(stages) == 0 {
			return // global ARGs
		}
		s := &stages[len(stages)-1]
		s.instrs = append(s.instrs, instruction{cmd: cmd, args: strings.TrimSpace(args)})
	}
	for _, line := range strings.Split(string(raw), "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") {
			continue
		}
		if strings.HasSuffix(trimmed, "\\") {
			cur.WriteString(strings.TrimSuffix(trimmed, "\\") + " ")
			continue
		}
		cur.WriteString(trimmed)
		flush()
	}
	flush()
	return stages
}

func (s stage) all(cmd string) []string {
	var out []string
	for _, in := range s.instrs {
		if in.cmd == cmd {
			out = append(out, in.args)
		}
	}
	return out
}

func repoRoot(t *testing.T) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

var (
	labelRE = regexp.MustCompile(`([a-z.]+)="([^"]*)"`)
	ldRE    = regexp.MustCompile(`-ldflags "([^"]*)"`)
)

// TestDockerfilesMatchTheGoBuilder: the Dockerfile and the e2e image builder
// build the same binary (module, package, CGO_ENABLED=0, GOWORK=off,
// -trimpath, ldflags) into the same path, with the same entrypoint, user and
// labels. The builder side is checked on a real image config built by the
// harness's builder.
func TestDockerfilesMatchTheGoBuilder(t *testing.T) {
	const version = "v1.2.3-test"
	for _, img := range []Image{Driver, Sentinel} {
		t.Run(img.Name, func(t *testing.T) {
			stages := parseDockerfile(t, filepath.Join(repoRoot(t), img.Dockerfile))
			if len(stages) != 2 {
				t.Fatalf("want a build stage and a final stage, got %d stages", len(stages))
			}
			build, final := stages[0], stages[1]
			// The build stage cross-compiles on the builder's platform.
			from, cross := strings.CutPrefix(build.from, "--platform=$BUILDPLATFORM ")
			if !cross || !strings.HasPrefix(from, "golang:") || !strings.HasSuffix(from, " AS build") {
				t.Errorf("build stage FROM %q, want --platform=$BUILDPLATFORM golang:... AS build", build.from)
			}
			if final.from != "scratch" {
				t.Errorf("final stage FROM %q, want scratch", final.from)
			}
			for _, f := range []string{from, final.from} {
				if name, _, _ := strings.Cut(f, ":"); strings.Contains(name, ".") || strings.Contains(name, "/") {
					t.Errorf("FROM %q names a registry host; use plain image names", f)
				}
			}

			// The binary's build.
			env := strings.Join(build.all("ENV"), " ")
			for _, want := range []string{"CGO_ENABLED=0", "GOWORK=off"} {
				if !strings.Contains(env, want) {
					t.Errorf("build stage ENV %q lacks %s", env, want)
				}
			}
			gb := img.GoBinary("/src", "/out/"+img.Binary, "${VERSION}")
			var run string
			for _, r := range build.all("RUN") {
				if strings.Contains(r, "go build") {
					run = r
				}
			}
			if run == "" {
				t.Fatal("no RUN go build in the build stage")
			}
			if !strings.Contains(run, "cd "+img.Module+" ") {
				t.Errorf("go build does not run in %s: %q", img.Module, run)
			}
			if !strings.Contains(run, "GOOS=${TARGETOS} GOARCH=${TARGETARCH} go build") ||
				!slices.Contains(build.all("ARG"), "TARGETARCH") || !slices.Contains(build.all("ARG"), "TARGETOS=linux") {
				t.Errorf("go build does not build for the target platform: %q", run)
			}
			if !strings.Contains(run, " -trimpath ") {
				t.Errorf("go build without -trimpath: %q", run)
			}
			m := ldRE.FindStringSubmatch(run)
			if m == nil || m[1] != gb.LDFlags {
				t.Errorf("ldflags %q, builder uses %q", m, gb.LDFlags)
			}
			if !strings.Contains(run, "-o "+gb.Output+" "+gb.Package) {
				t.Errorf("go build output/package differ from %s %s: %q", gb.Output, gb.Package, run)
			}
			if !slices.Equal(gb.Env, []string{"GOWORK=off"}) {
				t.Errorf("builder env %v", gb.Env)
			}

			// The final image, against a real image config from the builder.
			bin := filepath.Join(t.TempDir(), img.Binary)
			if err := os.WriteFile(bin, []byte("#!binary"), 0o755); err != nil {
				t.Fatal(err)
			}
			built, err := image.Build(img.Spec(bin, "test", version))
			if err != nil {
				t.Fatal(err)
			}
			cf, err := built.ConfigFile()
			if err != nil {
				t.Fatal(err)
			}
			copies := final.all("COPY")
			if len(copies) != 1 || copies[0] != "--from=build "+gb.Output+" "+img.Path() {
				t.Errorf("final COPY %q, want the binary at %s", copies, img.Path())
			}
			var entry []string
			if e := final.all("ENTRYPOINT"); len(e) != 1 || json.Unmarshal([]byte(e[0]), &entry) != nil {
				t.Fatalf("ENTRYPOINT %q is not one exec-form instruction", e)
			}
			if !slices.Equal(entry, cf.Config.Entrypoint) {
				t.Errorf("ENTRYPOINT %q, builder %q", entry, cf.Config.Entrypoint)
			}
			if u := final.all("USER"); len(u) != 1 || u[0] != cf.Config.User {
				t.Errorf("USER %q, builder %q", u, cf.Config.User)
			}
			labels := map[string]string{}
			for _, l := range final.all("LABEL") {
				for _, kv := range labelRE.FindAllStringSubmatch(l, -1) {
					labels[kv[1]] = strings.ReplaceAll(kv[2], "${VERSION}", version)
				}
			}
			if !maps.Equal(labels, cf.Config.Labels) {
				t.Errorf("labels differ:\n Dockerfile %v\n builder    %v", labels, cf.Config.Labels)
			}
			if !slices.Contains(final.all("ARG"), "VERSION=dev") || !slices.Contains(build.all("ARG"), "VERSION=dev") {
				t.Error("VERSION build arg missing in a stage")
			}
		})
	}
}

// TestSentinelIsNonRoot: the sentinel image must satisfy runAsNonRoot.
func TestSentinelIsNonRoot(t *testing.T) {
	uid, _, _ := strings.Cut(Sentinel.User, ":")
	if uid == "0" || uid == "" || strings.Trim(uid, "0123456789") != "" {
		t.Errorf("sentinel USER %q is not a numeric non-root UID", Sentinel.User)
	}
}
