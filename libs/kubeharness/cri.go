package kubeharness

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func dialCRI(socket string) (*grpc.ClientConn, error) {
	conn, err := grpc.NewClient("unix://"+socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, fmt.Errorf("failed to connect to CRI at %s: %w", socket, err)
	}
	return conn, nil
}

// criReady checks that containerd's CRI reports both the runtime and the
// network (CNI configuration) ready.
func criReady(ctx context.Context, socket string) error {
	conn, err := dialCRI(socket)
	if err != nil {
		return err
	}
	defer conn.Close()
	resp, err := runtimeapi.NewRuntimeServiceClient(conn).Status(ctx, &runtimeapi.StatusRequest{})
	if err != nil {
		return fmt.Errorf("CRI status: %w", err)
	}
	for _, cond := range resp.GetStatus().GetConditions() {
		if !cond.GetStatus() {
			return fmt.Errorf("CRI condition %s false: %s %s", cond.GetType(), cond.GetReason(), cond.GetMessage())
		}
	}
	return nil
}

// removeAllSandboxes stops and removes every pod sandbox: containerd kills
// the containers, unmounts their root filesystems and runs the CNI DEL that
// removes each pod's veth and network namespace.
func removeAllSandboxes(ctx context.Context, socket string) error {
	conn, err := dialCRI(socket)
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	rs := runtimeapi.NewRuntimeServiceClient(conn)
	resp, err := rs.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
	if err != nil {
		return fmt.Errorf("failed to list pod sandboxes: %w", err)
	}
	var errs []error
	for _, sb := range resp.GetItems() {
		id := sb.GetId()
		if _, err := rs.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: id}); err != nil {
			errs = append(errs, fmt.Errorf("failed to stop sandbox %s: %w", id, err))
			continue
		}
		if _, err := rs.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: id}); err != nil {
			errs = append(errs, fmt.Errorf("failed to remove sandbox %s: %w", id, err))
		}
	}
	return errors.Join(errs...)
}
