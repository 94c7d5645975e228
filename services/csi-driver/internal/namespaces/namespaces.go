// Package namespaces keeps a read-only cache of namespace labels, for
// sources limited to namespaces by a label selector. It lists and watches
// namespaces only (RBAC: list, watch on namespaces), asks the API server for
// their metadata only (PartialObjectMetadata), and keeps just each
// namespace's name and labels.
//
// It is a small list-and-watch loop over net/http and encoding/json, not a
// client-go informer. The driver runs on every node and its resident memory
// is a target (at most 1.1x a bare grpc-go server): linking client-go's REST
// client and informer (apimachinery's serializers, CBOR, YAML, gogo
// protobuf, go-cmp, klog's init) cost 5 MiB of resident memory and ~10 ms
// of start-up on every node, even where no selector is configured. The loop
// does what the informer did for this one resource: a paged list, then a
// watch from the list's resourceVersion with bookmarks, a new watch when
// the API server ends one, a fresh list when the resourceVersion expired
// (410), and backoff on errors.
package namespaces

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"k8s.io/apimachinery/pkg/util/wait"
)

// ServiceAccountDir is where the kubelet mounts a pod's service account
// token and the cluster's CA.
const ServiceAccountDir = "/var/run/secrets/kubernetes.io/serviceaccount"

// ErrNotSynced means the cache has not listed the namespaces yet.
var ErrNotSynced = errors.New("the namespace cache has not synced with the API server yet")

// ErrNotInCluster means the in-cluster environment (KUBERNETES_SERVICE_HOST
// and _PORT) is missing.
var ErrNotInCluster = errors.New("not running in a cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set")

// errExpired means the watch's resourceVersion is too old: list again.
var errExpired = errors.New("resource version expired")

const (
	// pageSize bounds one list response.
	pageSize = 500
	// requestTimeout bounds one list page.
	requestTimeout = time.Minute
	// accept asks for metadata only; the API server falls back to full
	// objects (the same JSON shape for what is read) if it cannot.
	acceptList  = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"
	acceptWatch = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json"
)

// Config says how to reach the API server.
type Config struct {
	// Server is the API server's URL, e.g. https://10.96.0.1:443.
	Server string
	// TokenFile holds the bearer token; it is read again before every
	// request, since bound service account tokens rotate.
	TokenFile string
	// BearerToken is used when TokenFile is empty; with neither, requests
	// carry no token (Client authenticates, e.g. with a client
	// certificate).
	BearerToken string
	// Client is the HTTP client; nil means one trusting only RootCAs.
	Client *http.Client
	// RootCAs verifies the API server when Client is nil.
	RootCAs *x509.CertPool
	// UserAgent names the component in API server logs and audit.
	UserAgent string
	// Logger receives list and watch failures; nil means none.
	Logger *zap.Logger
}

// InCluster returns the configuration of a pod's service account, as
// client-go's rest.InClusterConfig does: the API server from
// KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT, the token and CA
// from dir (ServiceAccountDir in production).
func InCluster(getenv func(string) string, dir, userAgent string) (Config, error) {
	host, port := getenv("KUBERNETES_SERVICE_HOST"), getenv("KUBERNETES_SERVICE_PORT")
	if host == "" || port == "" {
		return Config{}, ErrNotInCluster
	}
	token := filepath.Join(dir, "token")
	if _, err := os.Stat(token); err != nil {
		return Config{}, fmt.Errorf("service account token: %w", err)
	}
	pem, err := os.ReadFile(filepath.Join(dir, "ca.crt"))
	if err != nil {
		return Config{}, fmt.Errorf("service account CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return Config{}, fmt.Errorf("service account CA %s holds no certificate", filepath.Join(dir, "ca.crt"))
	}
	return Config{
		Server:    "https://" + net.JoinHostPort(host, port),
		TokenFile: token,
		RootCAs:   pool,
		UserAgent: userAgent,
	}, nil
}

// Cache answers with namespace labels from a list-and-watch loop.
type Cache struct {
	server    *url.URL
	tokenFile string
	token     string
	client    *http.Client
	userAgent string
	log       *zap.Logger

	mu     sync.RWMutex
	labels map[string]map[string]string
	synced atomic.Bool
}

// New builds a Cache; Start runs it.
func New(cfg Config) (*Cache, error) {
	u, err := url.Parse(cfg.Server)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("namespace cache: API server URL %q: want https://host:port", cfg.Server)
	}
	c := &Cache{server: u, tokenFile: cfg.TokenFile, token: cfg.BearerToken, client: cfg.Client, userAgent: cfg.UserAgent, log: cfg.Logger}
	if c.client == nil {
		c.client = &http.Client{Transport: &http.Transport{
			// As client-go's in-cluster transport: HTTPS_PROXY/NO_PROXY
			// are honoured.
			Proxy:               http.ProxyFromEnvironment,
			TLSClientConfig:     &tls.Config{RootCAs: cfg.RootCAs, MinVersion: tls.VersionTLS12},
			TLSHandshakeTimeout: 10 * time.Second,
			IdleConnTimeout:     90 * time.Second,
			ForceAttemptHTTP2:   true,
		}}
	}
	if c.log == nil {
		c.log = zap.NewNop()
	}
	return c, nil
}

// Start runs the cache until ctx is done. It does not wait for the first
// list: publish answers Unavailable until then (the kubelet retries), and
// unpublish never needs namespaces.
func (c *Cache) Start(ctx context.Context) { go c.run(ctx) }

// Synced reports whether the first list is in the cache.
func (c *Cache) Synced() bool { return c.synced.Load() }

// Labels implements node.Namespaces.
func (c *Cache) Labels(name string) (map[string]string, bool, error) {
	if !c.synced.Load() {
		return nil, false, ErrNotSynced
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	l, ok := c.labels[name]
	return l, ok, nil
}

// backoff spaces retries after failures: 100 ms doubling to 30 s, with
// jitter; a successful list or watch event starts it again.
func backoff() *wait.Backoff {
	return &wait.Backoff{Duration: 100 * time.Millisecond, Factor: 2, Jitter: 0.2, Steps: 1 << 30, Cap: 30 * time.Second}
}

// run lists, then watches from the list's resourceVersion until the watch
// expires, and lists again; every failure waits a backoff step.
func (c *Cache) run(ctx context.Context) {
	b := backoff()
	for ctx.Err() == nil {
		rv, err := c.list(ctx)
		if err != nil {
			if !c.pause(ctx, b, "list", err) {
				return
			}
			continue
		}
		b = backoff()
		for ctx.Err() == nil {
			next, progressed, err := c.watch(ctx, rv)
			rv = next
			if progressed {
				b = backoff()
			}
			if errors.Is(err, errExpired) {
				break // list again
			}
			if err != nil && !c.pause(ctx, b, "watch", err) {
				return
			}
		}
	}
}

// pause logs err and waits the next backoff step; false when ctx is done.
func (c *Cache) pause(ctx context.Context, b *wait.Backoff, op string, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	d := b.Step()
	c.log.Warn("failed to "+op+" namespaces; retrying", zap.Error(err), zap.Duration("retry_in", d))
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// meta is the part of an object's metadata the cache reads.
type meta struct {
	Name            string            `json:"name"`
	ResourceVersion string            `json:"resourceVersion"`
	Labels          map[string]string `json:"labels"`
}

type object struct {
	Metadata meta `json:"metadata"`
}

type list struct {
	Metadata struct {
		ResourceVersion string `json:"resourceVersion"`
		Continue        string `json:"continue"`
	} `json:"metadata"`
	Items []object `json:"items"`
}

type event struct {
	Type   string          `json:"type"`
	Object json.RawMessage `json:"object"`
}

// status is the API server's Status object (an ERROR event, or the body of
// a failed request).
type status struct {
	Code    int    `json:"code"`
	Reason  string `json:"reason"`
	Message string `json:"message"`
}

// list reads every namespace, page by page, replaces the cache with them
// and returns the list's resourceVersion.
func (c *Cache) list(ctx context.Context) (string, error) {
	all := map[string]map[string]string{}
	cont, rv := "", ""
	for {
		q := url.Values{"limit": {strconv.Itoa(pageSize)}}
		if cont != "" {
			q.Set("continue", cont)
		}
		var l list
		if err := c.getJSON(ctx, q, &l); err != nil {
			return "", err
		}
		for _, it := range l.Items {
			all[it.Metadata.Name] = it.Metadata.Labels
		}
		if cont = l.Metadata.Continue; cont == "" {
			rv = l.Metadata.ResourceVersion
			break
		}
	}
	c.mu.Lock()
	c.labels = all
	c.mu.Unlock()
	c.synced.Store(true)
	return rv, nil
}

func (c *Cache) getJSON(ctx context.Context, q url.Values, v any) error {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	resp, err := c.do(ctx, q, acceptList)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return fmt.Errorf("failed to decode the namespace list: %w", err)
	}
	return nil
}

// watch watches from rv and applies every event until the API server ends
// the watch (nil), the resourceVersion expired (errExpired) or it fails.
// It returns the last resourceVersion seen and whether any event came.
func (c *Cache) watch(ctx context.Context, rv string) (string, bool, error) {
	// The API server ends the watch after timeout; a new one starts from
	// the last resourceVersion seen (spread, as client-go does). A watch
	// whose connection went silent is cut a minute later.
	timeout := 300 + rand.IntN(300) //nolint:gosec // jitter, not a secret
	ctx, cancel := context.WithTimeout(ctx, time.Duration(timeout+60)*time.Second)
	defer cancel()
	q := url.Values{
		"watch":               {"true"},
		"resourceVersion":     {rv},
		"allowWatchBookmarks": {"true"},
		"timeoutSeconds":      {strconv.Itoa(timeout)},
	}
	resp, err := c.do(ctx, q, acceptWatch)
	if err != nil {
		return rv, false, err
	}
	defer resp.Body.Close()
	dec := json.NewDecoder(resp.Body)
	progressed := false
	for {
		var ev event
		if err := dec.Decode(&ev); err != nil {
			if errors.Is(err, io.EOF) || ctx.Err() != nil {
				return rv, progressed, nil
			}
			return rv, progressed, fmt.Errorf("failed to read the namespace watch: %w", err)
		}
		if ev.Type == "ERROR" {
			var st status
			_ = json.Unmarshal(ev.Object, &st)
			if st.Code == http.StatusGone || st.Reason == "Expired" || st.Reason == "Gone" {
				return rv, progressed, fmt.Errorf("%s: %w", st.Message, errExpired)
			}
			return rv, progressed, fmt.Errorf("watch error %d %s: %s", st.Code, st.Reason, st.Message)
		}
		var o object
		if err := json.Unmarshal(ev.Object, &o); err != nil {
			return rv, progressed, fmt.Errorf("failed to decode a namespace watch event: %w", err)
		}
		switch ev.Type {
		case "ADDED", "MODIFIED":
			c.mu.Lock()
			c.labels[o.Metadata.Name] = o.Metadata.Labels
			c.mu.Unlock()
		case "DELETED":
			c.mu.Lock()
			delete(c.labels, o.Metadata.Name)
			c.mu.Unlock()
		case "BOOKMARK":
		default:
			return rv, progressed, fmt.Errorf("unknown watch event type %q", ev.Type)
		}
		if o.Metadata.ResourceVersion != "" {
			rv = o.Metadata.ResourceVersion
		}
		progressed = true
	}
}

// do sends a GET for namespaces with query q; a reply other than 200 is an
// error (errExpired for 410 Gone).
func (c *Cache) do(ctx context.Context, q url.Values, accept string) (*http.Response, error) {
	token := c.token
	if c.tokenFile != "" {
		b, err := os.ReadFile(c.tokenFile)
		if err != nil {
			return nil, fmt.Errorf("failed to read the service account token: %w", err)
		}
		token = strings.TrimSpace(string(b))
	}
	u := *c.server
	u.Path = strings.TrimSuffix(u.Path, "/") + "/api/v1/namespaces"
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", accept)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if c.userAgent != "" {
		req.Header.Set("User-Agent", c.userAgent)
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode == http.StatusOK {
		return resp, nil
	}
	defer resp.Body.Close()
	var st status
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	_ = json.Unmarshal(body, &st)
	if resp.StatusCode == http.StatusGone {
		return nil, fmt.Errorf("%s: %w", st.Message, errExpired)
	}
	if st.Message == "" {
		st.Message = strings.TrimSpace(string(body))
	}
	return nil, fmt.Errorf("GET %s: %s: %s", u.Path, resp.Status, st.Message)
}
