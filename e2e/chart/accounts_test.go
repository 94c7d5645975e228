//go:build chart

package chart

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/meshcsi/meshcsi/e2e/kube"
	"github.com/meshcsi/meshcsi/e2e/manifest"
	"github.com/meshcsi/meshcsi/libs/kubeharness"
)

// TestAccountsCanDoOnlyWhatTheDocSays (issue 13, finding 8): the chart's
// RBAC is applied to a real API server; for each ServiceAccount (hand-off,
// sentinel and pre-upgrade hook) the API server lists what it may do in the
// install namespace (SelfSubjectRulesReview, impersonating it), which must be
// exactly the rules of its block in docs/sentinel.md; then
// SubjectAccessReviews check what none may ever do: create pods or workload
// controllers (in any namespace), delete another Job, patch or update any
// binding, use an SCC, create or change an admission policy, escalate, bind
// or impersonate.
func TestAccountsCanDoOnlyWhatTheDocSays(t *testing.T) {
	c, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cluster, kc := startControlPlane(t, c, kubeharness.Options{Mode: kubeharness.ControlPlane})
	admin, err := kubernetes.NewForConfig(cluster.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	for _, ns := range []string{namespace, "team-a", "team-b"} {
		if err := kc.EnsureNamespace(c, ns); err != nil {
			t.Fatal(err)
		}
	}
	objs := render(t, newHelm(t), valueSets["openshift"])
	var rbac manifest.Set
	for _, kind := range []string{"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"} {
		rbac = append(rbac, objs.Kind(kind)...)
	}
	if err := kc.Create(c, rbac, kube.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	doc := docRBAC(t)
	for _, account := range []string{"handoff", "sentinel", "upgrade"} {
		t.Run(account, func(t *testing.T) {
			user := fmt.Sprintf("system:serviceaccount:%s:%s-%s", namespace, release, account)
			cfg := rest.CopyConfig(cluster.RESTConfig())
			cfg.Impersonate = rest.ImpersonationConfig{UserName: user, Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + namespace, "system:authenticated"}}
			as, err := kubernetes.NewForConfig(cfg)
			if err != nil {
				t.Fatal(err)
			}
			// What the API server says the account can do in the install namespace.
			review, err := as.AuthorizationV1().SelfSubjectRulesReviews().Create(c, &authorizationv1.SelfSubjectRulesReview{
				Spec: authorizationv1.SelfSubjectRulesReviewSpec{Namespace: namespace}}, metav1.CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]bool{}
			for _, r := range review.Status.ResourceRules {
				for _, k := range expand(r.APIGroups, r.Resources, r.Verbs, r.ResourceNames) {
					got[k] = true
				}
			}
			want := map[string]bool{}
			for _, kind := range []string{"ClusterRole", "Role"} {
				o := doc.Get(kind, release+"-"+account)
				if o == nil && kind == "ClusterRole" && account == "upgrade" {
					continue // the pre-upgrade hook has a Role only
				}
				if o == nil {
					t.Fatalf("docs/sentinel.md has no %s %s-%s", kind, release, account)
				}
				var role rbacv1.ClusterRole
				if err := manifest.Into(o, &role); err != nil {
					t.Fatal(err)
				}
				for _, r := range role.Rules {
					for _, k := range expand(r.APIGroups, r.Resources, r.Verbs, r.ResourceNames) {
						want[k] = true
					}
				}
			}
			// Every authenticated user may review itself (system:basic-user).
			for _, k := range []string{
				"authorization.k8s.io/selfsubjectaccessreviews create *", "authorization.k8s.io/selfsubjectrulesreviews create *",
				"authentication.k8s.io/selfsubjectreviews create *",
			} {
				want[k] = true
			}
			t.Logf("%s may, in %s:\n  %s", user, namespace, strings.Join(keys(got), "\n  "))
			for k := range got {
				if !want[k] {
					t.Errorf("%s may %s, which docs/sentinel.md does not document", account, k)
				}
			}
			for k := range want {
				if !got[k] {
					t.Errorf("%s may not %s, which docs/sentinel.md documents", account, k)
				}
			}
			// What neither may ever do, here or in another namespace.
			never := []authorizationv1.ResourceAttributes{}
			for _, ns := range []string{namespace, "team-a"} {
				for _, gr := range [][2]string{{"", "pods"}, {"batch", "jobs"}, {"batch", "cronjobs"}, {"apps", "deployments"},
					{"apps", "daemonsets"}, {"apps", "statefulsets"}, {"apps", "replicasets"}, {"", "replicationcontrollers"}} {
					never = append(never, authorizationv1.ResourceAttributes{Namespace: ns, Verb: "create", Group: gr[0], Resource: gr[1]})
				}
				for _, verb := range []string{"patch", "update"} {
					for _, name := range []string{release + "-sentinel", release + "-handoff", release + "-driver-scc"} {
						never = append(never, authorizationv1.ResourceAttributes{Namespace: ns, Verb: verb, Group: "rbac.authorization.k8s.io", Resource: "rolebindings", Name: name})
					}
				}
				// Jobs other than the sentinel's, and the sentinel's anywhere
				// but the install namespace, are nobody's to delete.
				for _, name := range []string{release + "-handoff", release + "-upgrade", "other"} {
					never = append(never, authorizationv1.ResourceAttributes{Namespace: ns, Verb: "delete", Group: "batch", Resource: "jobs", Name: name})
				}
				if ns != namespace {
					never = append(never, authorizationv1.ResourceAttributes{Namespace: ns, Verb: "delete", Group: "batch", Resource: "jobs", Name: release + "-sentinel"})
				}
				never = append(never,
					authorizationv1.ResourceAttributes{Namespace: ns, Verb: "create", Resource: "pods", Subresource: "exec"},
					authorizationv1.ResourceAttributes{Namespace: ns, Verb: "create", Resource: "serviceaccounts", Subresource: "token", Name: release + "-driver"},
					authorizationv1.ResourceAttributes{Namespace: ns, Verb: "get", Resource: "secrets"},
					authorizationv1.ResourceAttributes{Namespace: ns, Verb: "create", Group: "rbac.authorization.k8s.io", Resource: "rolebindings"},
				)
			}
			for _, verb := range []string{"patch", "update", "create"} {
				never = append(never, authorizationv1.ResourceAttributes{Verb: verb, Group: "rbac.authorization.k8s.io", Resource: "clusterrolebindings", Name: release + "-sentinel"})
			}
			for _, res := range []string{"validatingadmissionpolicies", "validatingadmissionpolicybindings", "validatingwebhookconfigurations", "mutatingwebhookconfigurations"} {
				for _, verb := range []string{"create", "patch", "update"} {
					never = append(never, authorizationv1.ResourceAttributes{Verb: verb, Group: "admissionregistration.k8s.io", Resource: res, Name: release + "-removal-guard"})
				}
			}
			for _, scc := range []string{release + "-driver", release + "-workload", "privileged", "anyuid"} {
				never = append(never, authorizationv1.ResourceAttributes{Verb: "use", Group: "security.openshift.io", Resource: "securitycontextconstraints", Name: scc})
			}
			never = append(never,
				authorizationv1.ResourceAttributes{Verb: "escalate", Group: "rbac.authorization.k8s.io", Resource: "clusterroles", Name: release + "-sentinel"},
				authorizationv1.ResourceAttributes{Verb: "bind", Group: "rbac.authorization.k8s.io", Resource: "clusterroles", Name: "cluster-admin"},
				authorizationv1.ResourceAttributes{Verb: "impersonate", Resource: "serviceaccounts"},
				authorizationv1.ResourceAttributes{Verb: "impersonate", Resource: "users"},
				authorizationv1.ResourceAttributes{Verb: "create", Group: "storage.k8s.io", Resource: "csidrivers"},
			)
			for _, ra := range never {
				ra := ra
				sar, err := admin.AuthorizationV1().SubjectAccessReviews().Create(c, &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
					User: user, Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + namespace, "system:authenticated"}, ResourceAttributes: &ra}}, metav1.CreateOptions{})
				if err != nil {
					t.Fatal(err)
				}
				if sar.Status.Allowed {
					t.Errorf("%s may %s %s/%s %q in %q (%s)", account, ra.Verb, ra.Group, ra.Resource+subresource(ra.Subresource), ra.Name, ra.Namespace, sar.Status.Reason)
				}
			}
		})
	}
}

// docRBACBlock is the YAML of the rbac block of docs/sentinel.md, with its
// {{fullname}}, {{namespace}} and {{driverName}} placeholders.
func docRBACBlock(t *testing.T) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(chartDir(t), "..", "..", "docs", "sentinel.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	begin, end := strings.Index(doc, "<!-- rbac:begin -->"), strings.Index(doc, "<!-- rbac:end -->")
	if begin < 0 || end < begin {
		t.Fatal("docs/sentinel.md has no rbac:begin/rbac:end block")
	}
	block := doc[begin:end]
	return block[strings.Index(block, "```yaml")+len("```yaml") : strings.LastIndex(block, "```")]
}

// docRBAC is the rbac block of docs/sentinel.md for the default release.
func docRBAC(t *testing.T) manifest.Set {
	t.Helper()
	set, err := manifest.Parse(strings.NewReplacer("{{fullname}}", release, "{{namespace}}", namespace, "{{driverName}}", "csi.meshcsi.io").Replace(docRBACBlock(t)))
	if err != nil {
		t.Fatal(err)
	}
	return set
}

// expand turns a rule into "group/resource verb name" strings ("*" for any name).
func expand(groups, resources, verbs, names []string) []string {
	if len(names) == 0 {
		names = []string{"*"}
	}
	var out []string
	for _, g := range groups {
		for _, r := range resources {
			for _, v := range verbs {
				for _, n := range names {
					out = append(out, fmt.Sprintf("%s/%s %s %s", g, r, v, n))
				}
			}
		}
	}
	return out
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func subresource(s string) string {
	if s == "" {
		return ""
	}
	return "/" + s
}
