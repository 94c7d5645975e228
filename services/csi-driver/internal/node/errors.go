package node

import (
	"context"
	"errors"
	"fmt"
	"io/fs"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/meshcsi/meshcsi/services/csi-driver/internal/logfield"
	"github.com/meshcsi/meshcsi/services/csi-driver/internal/mount"
)

// Kinds of refusal decided by this package. A *requestError Is one of them;
// toStatus maps each to its gRPC code.
var (
	// errInvalid maps to InvalidArgument.
	errInvalid = errors.New("invalid argument")
	// errDenied maps to PermissionDenied.
	errDenied = errors.New("permission denied")
	// errUnavailable maps to Unavailable: the kubelet retries.
	errUnavailable = errors.New("unavailable")
)

// requestError is a refusal whose message names the field; kind says which
// code it gets.
type requestError struct {
	kind error
	msg  string
}

func (e *requestError) Error() string { return e.msg }

// Is makes errors.Is(err, kind) true.
func (e *requestError) Is(target error) bool { return target == e.kind }

func refuse(kind error, format string, a ...any) error {
	return &requestError{kind: kind, msg: fmt.Sprintf(format, a...)}
}

func invalid(format string, a ...any) error { return refuse(errInvalid, format, a...) }

// toStatus is the one place where an error becomes a gRPC status: the codes
// the CSI spec asks for, with a message naming the field or the source.
func toStatus(err error) error {
	var (
		srcErr     *mount.SourceError
		notOurs    *mount.NotOursError
		requestErr *requestError
	)
	switch {
	case err == nil:
		return nil
	case errors.As(err, &requestErr):
		return status.Error(requestCode(requestErr.kind), err.Error())
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	case errors.As(err, &srcErr):
		why := srcErr.Err.Error()
		switch {
		case errors.Is(err, fs.ErrNotExist):
			why = "the source directory does not exist on this node"
		case errors.Is(err, mount.ErrSourceNotDirectory):
			why = "the source path is not a directory on this node"
		case errors.Is(err, mount.ErrSourceChanged):
			why = "the source no longer resolves as it did when the driver started (a symbolic link or another filesystem appeared on its path); restart the driver after checking it"
		}
		return status.Errorf(codes.FailedPrecondition, "volume_context[%s] %q (%s): %s", KeySource, srcErr.Name, srcErr.Path, why)
	case errors.Is(err, mount.ErrOtherSource):
		return status.Errorf(codes.AlreadyExists, "target_path is already mounted from another source: %s", logfield.Bound(err.Error()))
	case errors.As(err, &notOurs):
		return status.Errorf(codes.FailedPrecondition, "target_path %s holds a %s that this driver did not make; it was left untouched",
			logfield.Bound(notOurs.Target), notOurs.Found)
	case errors.Is(err, mount.ErrSymlink):
		return status.Errorf(codes.InvalidArgument, "target_path must not contain a symbolic link: %s", logfield.Bound(err.Error()))
	case errors.Is(err, mount.ErrInvalidTarget), errors.Is(err, mount.ErrNotBeneath), errors.Is(err, mount.ErrNotDir):
		return status.Errorf(codes.InvalidArgument, "target_path: %s", logfield.Bound(err.Error()))
	case errors.Is(err, mount.ErrNoParent):
		return status.Errorf(codes.FailedPrecondition, "target_path: the parent directory does not exist (the kubelet creates it): %s", logfield.Bound(err.Error()))
	default:
		return status.Errorf(codes.Internal, "internal error: %s", logfield.Bound(err.Error()))
	}
}

func requestCode(kind error) codes.Code {
	switch {
	case errors.Is(kind, errInvalid):
		return codes.InvalidArgument
	case errors.Is(kind, errDenied):
		return codes.PermissionDenied
	case errors.Is(kind, errUnavailable):
		return codes.Unavailable
	default:
		return codes.Internal
	}
}
