package remove_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	k8stesting "k8s.io/client-go/testing"

	"github.com/meshcsi/meshcsi/services/sentinel/internal/fixture"
	"github.com/meshcsi/meshcsi/services/sentinel/internal/plan"
	"github.com/meshcsi/meshcsi/services/sentinel/internal/remove"
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
		wantErr bool
	}{
		{"deleted with the recorded UID", obj("DaemonSet", fixture.NS, "meshcsi-driver", "uid-ds"), nil, remove.Deleted, false},
		{"already gone", obj("DaemonSet", fixture.NS, "nope", "uid-x"), nil, remove.Gone, false},
		{"replaced by a newer install", obj("DaemonSet", fixture.NS, "meshcsi-driver", "uid-old"), nil, remove.Replaced, false},
		{"forbidden", obj("CSIDriver", "", fixture.Driver, "uid-csidriver"),
			apierrors.NewForbidden(schema.GroupResource{Resource: "csidrivers"}, fixture.Driver, errors.New("no")), remove.Forbidden, false},
		{"server error", obj("CSIDriver", "", fixture.Driver, "uid-csidriver"), apierrors.NewInternalError(errors.New("etcd")), "", true},
		{"no UID recorded", obj("CSIDriver", "", fixture.Driver, ""), nil, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := fixture.New(t)
			c.AddRelease(t)
			if tt.react != nil {
				c.Meta.PrependReactor("delete", "*", func(k8stesting.Action) (bool, runtime.Object, error) { return true, nil, tt.react })
			}
			r, err := remove.New(c.MetaClient())
			if err != nil {
				t.Fatal(err)
			}
			res, err := r.Delete(context.Background(), tt.target)
			if (err != nil) != tt.wantErr || res.Outcome != tt.want {
				t.Fatalf("Delete() = %+v, %v; want %q (error %v)", res, err, tt.want, tt.wantErr)
			}
			if tt.wantErr {
				return
			}
			muts := c.Mutations()
			if len(muts) != 1 || !strings.HasSuffix(muts[0], "uid="+tt.target.UID) || !strings.Contains(muts[0], tt.target.Name) {
				t.Fatalf("mutations = %v, want one delete with the UID precondition", muts)
			}
		})
	}
}

func TestAdopt(t *testing.T) {
	c := fixture.New(t)
	c.AddRelease(t)
	r, _ := remove.New(c.MetaClient())
	owner := obj("ClusterRole", "", "meshcsi-sentinel", "uid-cr-sentinel")
	res, err := r.Adopt(context.Background(), obj("RoleBinding", fixture.NS, "meshcsi-sentinel", "uid-rb-sentinel"), owner)
	if err != nil || res.Outcome != "adopted" {
		t.Fatalf("Adopt() = %+v, %v", res, err)
	}
	m, err := c.Meta.Resource(obj("RoleBinding", "", "", "").GVR()).Namespace(fixture.NS).Get(context.Background(), "meshcsi-sentinel", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(m.OwnerReferences) != 1 || m.OwnerReferences[0].UID != "uid-cr-sentinel" || m.OwnerReferences[0].APIVersion != "rbac.authorization.k8s.io/v1" ||
		m.OwnerReferences[0].BlockOwnerDeletion != nil {
		t.Fatalf("ownerReferences = %+v", m.OwnerReferences)
	}
	// A replaced object (other UID) is not adopted; a gone one is done.
	if res, _ := r.Adopt(context.Background(), obj("RoleBinding", fixture.NS, "meshcsi-sentinel", "uid-old"), owner); res.Outcome != remove.Replaced {
		t.Fatalf("Adopt(replaced) = %+v", res)
	}
	if res, _ := r.Adopt(context.Background(), obj("RoleBinding", fixture.NS, "gone", "uid-gone"), owner); res.Outcome != remove.Gone {
		t.Fatalf("Adopt(gone) = %+v", res)
	}
}
