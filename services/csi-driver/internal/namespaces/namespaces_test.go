package namespaces

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
	"k8s.io/apimachinery/pkg/util/wait"
)

// apiServer fakes the API server's namespaces endpoint: a refused first
// request, a list in two pages, a watch that changes a namespace and ends,
// a watch whose resourceVersion expired, a second list and a last watch.
type apiServer struct {
	t       *testing.T
	release chan struct{} // lets the first watch go on and end

	mu       sync.Mutex
	requests int
	lists    int
	watchRVs []string
	tokens   []string
}

func (a *apiServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	a.requests++
	n := a.requests
	a.tokens = append(a.tokens, strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "))
	a.mu.Unlock()
	if r.Method != http.MethodGet || r.URL.Path != "/api/v1/namespaces" {
		a.t.Errorf("unexpected request %s %s", r.Method, r.URL.Path)
		http.Error(w, "no", http.StatusNotFound)
		return
	}
	if !strings.Contains(r.Header.Get("Accept"), "as=PartialObjectMetadata") {
		a.t.Errorf("request does not ask for metadata only: Accept %q", r.Header.Get("Accept"))
	}
	if n == 1 {
		w.WriteHeader(http.StatusForbidden)
		_, _ = w.Write([]byte(`{"kind":"Status","code":403,"reason":"Forbidden","message":"namespaces is forbidden"}`))
		return
	}
	q := r.URL.Query()
	if q.Get("watch") != "true" {
		a.list(w, q.Get("limit"), q.Get("continue"))
		return
	}
	if q.Get("allowWatchBookmarks") != "true" || q.Get("timeoutSeconds") == "" {
		a.t.Errorf("watch without bookmarks or timeout: %v", q)
	}
	a.mu.Lock()
	a.watchRVs = append(a.watchRVs, q.Get("resourceVersion"))
	watches := len(a.watchRVs)
	a.mu.Unlock()
	flush := func(line string) {
		_, _ = w.Write([]byte(line + "\n"))
		w.(http.Flusher).Flush()
	}
	switch watches {
	case 1:
		flush(`{"type":"MODIFIED","object":{"metadata":{"name":"team-a","resourceVersion":"11","labels":{"team":"b"}}}}`)
		select {
		case <-a.release:
		case <-r.Context().Done():
			return
		}
		flush(`{"type":"BOOKMARK","object":{"metadata":{"resourceVersion":"12"}}}`)
		// Ends the watch: the cache watches again from 12.
	case 2:
		flush(`{"type":"ERROR","object":{"kind":"Status","code":410,"reason":"Expired","message":"too old resource version: 12 (15)"}}`)
	default:
		flush(`{"type":"ADDED","object":{"metadata":{"name":"team-d","resourceVersion":"21","labels":{"team":"d"}}}}`)
		flush(`{"type":"DELETED","object":{"metadata":{"name":"team-c","resourceVersion":"22"}}}`)
		<-r.Context().Done()
	}
}

func (a *apiServer) list(w http.ResponseWriter, limit, cont string) {
	if limit != "500" {
		a.t.Errorf("list limit = %q, want 500", limit)
	}
	a.mu.Lock()
	if cont == "" {
		a.lists++
	}
	lists := a.lists
	a.mu.Unlock()
	switch {
	case lists == 1 && cont == "":
		_, _ = w.Write([]byte(`{"kind":"PartialObjectMetadataList","metadata":{"resourceVersion":"9","continue":"page2"},
			"items":[{"metadata":{"name":"team-a","labels":{"team":"a"},"annotations":{"big":"x"}}}]}`))
	case lists == 1:
		if cont != "page2" {
			a.t.Errorf("continue = %q", cont)
		}
		_, _ = w.Write([]byte(`{"metadata":{"resourceVersion":"10"},"items":[{"metadata":{"name":"team-b","labels":{"team":"b"}}},{"metadata":{"name":"bare"}}]}`))
	default:
		_, _ = w.Write([]byte(`{"metadata":{"resourceVersion":"20"},"items":[{"metadata":{"name":"team-c","labels":{"team":"c"}}},{"metadata":{"name":"team-e"}}]}`))
	}
}

func (a *apiServer) snapshot() (rvs, tokens []string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.watchRVs...), append([]string(nil), a.tokens...)
}

// eventually polls cond (the cache changes on the API server's events).
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), 5*time.Millisecond, 60*time.Second, true,
		func(context.Context) (bool, error) { return cond(), nil })
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func TestCacheListsWatchesAndRelists(t *testing.T) {
	api := &apiServer{t: t, release: make(chan struct{})}
	srv := httptest.NewTLSServer(api)
	defer srv.Close()
	token := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(token, []byte("first\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zap.WarnLevel)
	c, err := New(Config{Server: srv.URL, TokenFile: token, Client: srv.Client(), UserAgent: "test", Logger: zap.New(core)})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Labels("team-a"); !errors.Is(err, ErrNotSynced) {
		t.Fatalf("Labels before sync = %v, want ErrNotSynced", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c.Start(ctx)

	label := func(ns string) string {
		l, found, err := c.Labels(ns)
		if err != nil || !found {
			return fmt.Sprintf("<found=%v err=%v>", found, err)
		}
		return l["team"]
	}
	// The refused first list is logged and retried; both pages are in; the
	// watch's change is applied.
	eventually(t, "list and first watch event", func() bool { return label("team-a") == "b" && label("team-b") == "b" })
	if logs.FilterMessage("failed to list namespaces; retrying").Len() != 1 {
		t.Fatalf("the refused list was not logged once: %v", logs.All())
	}
	if l, found, err := c.Labels("bare"); err != nil || !found || len(l) != 0 {
		t.Fatalf("Labels(bare) = %v, %v, %v; want found without labels", l, found, err)
	}
	if _, found, err := c.Labels("nope"); found || err != nil {
		t.Fatalf("Labels(nope) = %v, %v", found, err)
	}

	// A rotated token is used from the next request on.
	if err := os.WriteFile(token, []byte("second"), 0o600); err != nil {
		t.Fatal(err)
	}
	close(api.release)
	// Bookmark, end of watch, a watch from 12 that expired (410), a new
	// list that replaces the cache, and a watch from its resourceVersion.
	eventually(t, "relist and last watch", func() bool {
		_, foundA, _ := c.Labels("team-a")
		_, foundC, _ := c.Labels("team-c")
		return !foundA && !foundC && label("team-d") == "d"
	})
	if _, found, _ := c.Labels("team-e"); !found {
		t.Fatal("team-e from the second list is missing")
	}
	rvs, tokens := api.snapshot()
	if strings.Join(rvs, ",") != "10,12,20" {
		t.Fatalf("watches from resourceVersions %v, want 10, 12, 20", rvs)
	}
	if tokens[0] != "first" || tokens[len(tokens)-1] != "second" {
		t.Fatalf("tokens sent %v: want first, ..., second", tokens)
	}
}

func TestCacheStopsWithContext(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, `{"code":500,"message":"down"}`, http.StatusInternalServerError)
	}))
	defer srv.Close()
	token := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(token, []byte("t"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := New(Config{Server: srv.URL, TokenFile: token, Client: srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c.run(ctx); close(done) }()
	cancel()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("run did not return after its context was cancelled")
	}
	if c.Synced() {
		t.Fatal("synced without a successful list")
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	for _, cfg := range []Config{
		{Server: "10.0.0.1:443", TokenFile: "t"},
		{Server: "ftp://x", TokenFile: "t"},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("New(%+v) accepted", cfg)
		}
	}
}

func TestInCluster(t *testing.T) {
	env := map[string]string{}
	getenv := func(k string) string { return env[k] }
	dir := t.TempDir()
	if _, err := InCluster(getenv, dir, "ua"); !errors.Is(err, ErrNotInCluster) {
		t.Fatalf("InCluster without env = %v, want ErrNotInCluster", err)
	}
	env["KUBERNETES_SERVICE_HOST"], env["KUBERNETES_SERVICE_PORT"] = "fd00::1", "443"
	if _, err := InCluster(getenv, dir, "ua"); err == nil {
		t.Fatal("InCluster without a token accepted")
	}
	if err := os.WriteFile(filepath.Join(dir, "token"), []byte("t"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "ca.crt"), []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := InCluster(getenv, dir, "ua"); err == nil {
		t.Fatal("InCluster with a CA file holding no certificate accepted")
	}
	srv := httptest.NewTLSServer(http.NotFoundHandler())
	defer srv.Close()
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(filepath.Join(dir, "ca.crt"), ca, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := InCluster(getenv, dir, "ua")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Server != "https://[fd00::1]:443" || cfg.TokenFile != filepath.Join(dir, "token") || cfg.RootCAs == nil || cfg.UserAgent != "ua" {
		t.Fatalf("InCluster = %+v", cfg)
	}
}

// The watch's JSON shape is what the API server sends (a sanity check of the
// decoding structs against a Status and an object).
func TestDecodeShapes(t *testing.T) {
	var ev event
	if err := json.Unmarshal([]byte(`{"type":"ERROR","object":{"kind":"Status","code":410,"reason":"Expired"}}`), &ev); err != nil {
		t.Fatal(err)
	}
	var st status
	if err := json.Unmarshal(ev.Object, &st); err != nil || st.Code != 410 || st.Reason != "Expired" {
		t.Fatalf("status = %+v, %v", st, err)
	}
}
