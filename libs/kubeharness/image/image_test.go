package image

import (
	"archive/tar"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

func TestBuildArchive(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "tool")
	if err := os.WriteFile(bin, []byte("#!binary"), 0o755); err != nil {
		t.Fatal(err)
	}
	spec := Spec{
		Ref:        "meshcsi/test:dev",
		Files:      []File{{Path: "/usr/bin/tool", Source: bin}, {Path: "/etc/tool.conf", Data: []byte("x=1"), Mode: 0o644}},
		Entrypoint: []string{"/usr/bin/tool"},
		Cmd:        []string{"--flag"},
		User:       "65532:65532",
		WorkingDir: "/",
		Env:        []string{"A=b"},
		Labels:     map[string]string{"org.opencontainers.image.title": "tool"},
	}
	archive := filepath.Join(dir, "out", "tool.tar")
	if err := BuildArchive(spec, archive); err != nil {
		t.Fatal(err)
	}
	tag, err := name.NewTag(spec.Ref)
	if err != nil {
		t.Fatal(err)
	}
	img, err := tarball.ImageFromPath(archive, &tag)
	if err != nil {
		t.Fatalf("archive does not load as %s: %v", spec.Ref, err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.OS != "linux" || cf.Architecture != runtime.GOARCH {
		t.Errorf("platform = %s/%s", cf.OS, cf.Architecture)
	}
	got := cf.Config
	checks := []struct {
		name      string
		got, want any
	}{
		{"entrypoint", got.Entrypoint, spec.Entrypoint},
		{"cmd", got.Cmd, spec.Cmd},
		{"user", got.User, spec.User},
		{"workdir", got.WorkingDir, spec.WorkingDir},
		{"env", got.Env, spec.Env},
		{"labels", got.Labels, spec.Labels},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}

	entries := map[string]*tar.Header{}
	content := map[string]string{}
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		entries[hdr.Name] = hdr
		data, _ := io.ReadAll(tr)
		content[hdr.Name] = string(data)
	}
	for _, want := range []struct {
		name string
		mode int64
		data string
		dir  bool
	}{
		{name: "usr", mode: 0o755, dir: true},
		{name: "usr/bin", mode: 0o755, dir: true},
		{name: "etc", mode: 0o755, dir: true},
		{name: "usr/bin/tool", mode: 0o755, data: "#!binary"},
		{name: "etc/tool.conf", mode: 0o644, data: "x=1"},
	} {
		hdr := entries[want.name]
		if hdr == nil {
			t.Errorf("layer lacks %s (has %v)", want.name, keys(entries))
			continue
		}
		if hdr.Mode != want.mode || (hdr.Typeflag == tar.TypeDir) != want.dir {
			t.Errorf("%s: mode %o dir %v, want %o dir %v", want.name, hdr.Mode, hdr.Typeflag == tar.TypeDir, want.mode, want.dir)
		}
		if !want.dir && content[want.name] != want.data {
			t.Errorf("%s: content %q, want %q", want.name, content[want.name], want.data)
		}
	}

	// Same inputs, same image.
	img2, err := Build(spec)
	if err != nil {
		t.Fatal(err)
	}
	d1, _ := img.Digest()
	d2, _ := img2.Digest()
	if d1 != d2 {
		t.Errorf("digests differ for the same inputs: %s vs %s", d1, d2)
	}
}

func keys(m map[string]*tar.Header) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestBuildRejects(t *testing.T) {
	tests := []struct {
		name string
		spec Spec
	}{
		{"no files", Spec{Ref: "a/b:c"}},
		{"relative path", Spec{Ref: "a/b:c", Files: []File{{Path: "bin/x", Data: []byte("x")}}}},
		{"unclean path", Spec{Ref: "a/b:c", Files: []File{{Path: "/bin/../x", Data: []byte("x")}}}},
		{"root path", Spec{Ref: "a/b:c", Files: []File{{Path: "/", Data: []byte("x")}}}},
		{"missing source", Spec{Ref: "a/b:c", Files: []File{{Path: "/x", Source: "/nonexistent/x"}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Build(tt.spec); err == nil {
				t.Fatal("Build succeeded")
			}
		})
	}
	if err := BuildArchive(Spec{Ref: "Not A Ref", Files: []File{{Path: "/x", Data: []byte("x")}}}, filepath.Join(t.TempDir(), "x.tar")); err == nil {
		t.Error("BuildArchive accepted an invalid reference")
	}
}

func TestBuildPause(t *testing.T) {
	archive := filepath.Join(t.TempDir(), "pause.tar")
	if err := BuildPause(context.Background(), archive); err != nil {
		t.Fatal(err)
	}
	tag, err := name.NewTag(PauseRef)
	if err != nil {
		t.Fatal(err)
	}
	img, err := tarball.ImageFromPath(archive, &tag)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cf.Config.Entrypoint, []string{"/pause"}) {
		t.Errorf("entrypoint = %v", cf.Config.Entrypoint)
	}
}

func TestBuildGoRejectsEmpty(t *testing.T) {
	if err := BuildGo(context.Background(), GoBinary{}); err == nil {
		t.Fatal("BuildGo without a package succeeded")
	}
}
