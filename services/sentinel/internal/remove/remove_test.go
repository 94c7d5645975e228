package remove_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	k8stesting "k8s.io/client-go/testing"

	"github.com/meshcsi/meshcsi/services/sentinel/internal/kube"
	"github.com/meshcsi/meshcsi/services/sentinel/internal/plan"
	"github.com/meshcsi/meshcsi/services/sentinel/internal/remove"
	"github.com/meshcsi/meshcsi/services/sentinel/internal/sentineltest"
)

func obj(kind, ns, name, uid string) plan.Object {
	k, _ := plan.KindByName(kind)
	return plan.Object{Kind: kind, Group: k.GVR.Group, Version: k.GVR.Version, Resource: k.GVR.Resource, Namespace: ns, Name: name, UID: uid}
}

func TestDeleteOutcomes(t *testing.T) {
	tests := []struct {
		name    string
		target  plan.Object
		react   error
		want    remove.Outcome
		wantErr error
	}{
		{"deleted with the recorded UID", obj("DaemonSet", sentineltest.NS, "meshcsi-driver", "uid-ds"), nil, remove.Deleted, nil},
		{"already gone", obj("DaemonSet", sentineltest.NS, "nope", "uid-x"), nil, remove.Gone, nil},
		{"replaced by a newer install", obj("DaemonSet", sentineltest.NS, "meshcsi-driver", "uid-old"), nil, remove.Replaced, nil},
		{"forbidden (RBAC or a policy) is refused", obj("CSIDriver", "", sentineltest.Driver, "uid-csidriver"),
			apierrors.NewForbidden(schema.GroupResource{Resource: "csidrivers"}, sentineltest.Driver, errors.New("no")), "", remove.ErrRefused},
		{"denied by an admission policy (Invalid) is refused", obj("DaemonSet", sentineltest.NS, "meshcsi-driver", "uid-ds"),
			apierrors.NewInvalid(schema.GroupKind{Group: "apps", Kind: "DaemonSet"}, "meshcsi-driver", nil), "", remove.ErrRefused},
		{"bad request is permanent", obj("CSIDriver", "", sentineltest.Driver, "uid-csidriver"), apierrors.NewBadRequest("no"), "", errAny},
		{"no UID recorded", obj("CSIDriver", "", sentineltest.Driver, ""), nil, "", errAny},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := sentineltest.New(t)
			c.AddRelease(t)
			if tt.react != nil {
				c.Meta.PrependReactor("delete", "*", func(k8stesting.Action) (bool, runtime.Object, error) { return true, nil, tt.react })
			}
			r, err := remove.New(c.MetaClient(), zap.NewNop())
			if err != nil {
				t.Fatal(err)
			}
			res, err := r.Delete(context.Background(), tt.target)
			if res.Outcome != tt.want || (err == nil) != (tt.wantErr == nil) || (!errors.Is(tt.wantErr, errAny) && !errors.Is(err, tt.wantErr)) {
				t.Fatalf("Delete() = %+v, %v; want %q (error %v)", res, err, tt.want, tt.wantErr)
			}
			if tt.wantErr != nil {
				return
			}
			muts := c.Mutations()
			if len(muts) != 1 || !strings.HasSuffix(muts[0], "uid="+tt.target.UID) || !strings.Contains(muts[0], tt.target.Name) {
				t.Fatalf("mutations = %v, want one delete with the UID precondition", muts)
			}
		})
	}
}

// errAny stands for "some error" in TestDeleteOutcomes.
var errAny = errors.New("any error")

// A transient error (here the 500 an unreachable webhook causes) is retried
// until the API server answers.
func TestDeleteRetriesTransientErrors(t *testing.T) {
	c := sentineltest.New(t)
	c.AddRelease(t)
	var calls int
	c.Meta.PrependReactor("delete", "*", func(k8stesting.Action) (bool, runtime.Object, error) {
		calls++
		if calls < 3 {
			return true, nil, apierrors.NewInternalError(errors.New("failed calling webhook"))
		}
		return false, nil, nil
	})
	old := kube.Backoff
	kube.Backoff.Duration = time.Millisecond
	t.Cleanup(func() { kube.Backoff = old })
	r, _ := remove.New(c.MetaClient(), zap.NewNop())
	res, err := r.Delete(context.Background(), obj("DaemonSet", sentineltest.NS, "meshcsi-driver", "uid-ds"))
	if err != nil || res.Outcome != remove.Deleted || calls != 3 {
		t.Fatalf("Delete() = %+v, %v after %d calls; want deleted on the third", res, err, calls)
	}
}

func TestAdopt(t *testing.T) {
	c := sentineltest.New(t)
	c.AddRelease(t)
	r, _ := remove.New(c.MetaClient(), zap.NewNop())
	owner := obj("ClusterRole", "", "meshcsi-sentinel", "uid-cr-sentinel")
	res, err := r.Adopt(context.Background(), obj("RoleBinding", sentineltest.NS, "meshcsi-sentinel", "uid-rb-sentinel"), owner)
	if err != nil || res.Outcome != remove.Adopted {
		t.Fatalf("Adopt() = %+v, %v", res, err)
	}
	m, err := c.Meta.Resource(obj("RoleBinding", "", "", "").GVR()).Namespace(sentineltest.NS).Get(context.Background(), "meshcsi-sentinel", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(m.OwnerReferences) != 1 || m.OwnerReferences[0].UID != "uid-cr-sentinel" || m.OwnerReferences[0].APIVersion != "rbac.authorization.k8s.io/v1" ||
		m.OwnerReferences[0].BlockOwnerDeletion != nil {
		t.Fatalf("ownerReferences = %+v", m.OwnerReferences)
	}
	// A replaced object (other UID) is not adopted; a gone one is done.
	if res, _ := r.Adopt(context.Background(), obj("RoleBinding", sentineltest.NS, "meshcsi-sentinel", "uid-old"), owner); res.Outcome != remove.Replaced {
		t.Fatalf("Adopt(replaced) = %+v", res)
	}
	if res, _ := r.Adopt(context.Background(), obj("RoleBinding", sentineltest.NS, "gone", "uid-gone"), owner); res.Outcome != remove.Gone {
		t.Fatalf("Adopt(gone) = %+v", res)
	}
}
