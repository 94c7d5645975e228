package registration

import (
	"context"
	"fmt"

	"google.golang.org/grpc"
)

// CSIPlugin is the plugin type of a CSI driver.
const CSIPlugin = "CSIPlugin"

// The messages of pluginregistration/v1's api.proto (package
// pluginregistration, proto3), with the field numbers and types of the
// generated code. gRPC's proto codec encodes them from their struct tags.

// InfoRequest is the kubelet's GetInfo request (no fields).
type InfoRequest struct{}

// PluginInfo describes the plugin to the kubelet.
type PluginInfo struct {
	// Type is CSIPlugin.
	Type string `protobuf:"bytes,1,opt,name=type,proto3" json:"type,omitempty"`
	// Name is the CSI driver name.
	Name string `protobuf:"bytes,2,opt,name=name,proto3" json:"name,omitempty"`
	// Endpoint is the CSI socket.
	Endpoint string `protobuf:"bytes,3,opt,name=endpoint,proto3" json:"endpoint,omitempty"`
	// SupportedVersions are the CSI versions the driver speaks.
	SupportedVersions []string `protobuf:"bytes,4,rep,name=supported_versions,json=supportedVersions,proto3" json:"supported_versions,omitempty"`
}

// Status (RegistrationStatus in api.proto) is the kubelet's verdict on a
// registration.
type Status struct {
	// PluginRegistered is true when the kubelet accepted the plugin.
	PluginRegistered bool `protobuf:"varint,1,opt,name=plugin_registered,json=pluginRegistered,proto3" json:"plugin_registered,omitempty"`
	// Error is the kubelet's reason for a refusal.
	Error string `protobuf:"bytes,2,opt,name=error,proto3" json:"error,omitempty"`
}

// StatusResponse (RegistrationStatusResponse) is the empty answer to Status.
type StatusResponse struct{}

// Reset, String and ProtoMessage make the messages protobuf messages.

// Reset clears m.
func (m *InfoRequest) Reset() { *m = InfoRequest{} }

// String formats m.
func (m *InfoRequest) String() string { return "{}" }

// ProtoMessage marks a protobuf message.
func (*InfoRequest) ProtoMessage() {}

// Reset clears m.
func (m *PluginInfo) Reset() { *m = PluginInfo{} }

// String formats m.
func (m *PluginInfo) String() string { return fmt.Sprintf("%+v", *m) }

// ProtoMessage marks a protobuf message.
func (*PluginInfo) ProtoMessage() {}

// Reset clears m.
func (m *Status) Reset() { *m = Status{} }

// String formats m.
func (m *Status) String() string { return fmt.Sprintf("%+v", *m) }

// ProtoMessage marks a protobuf message.
func (*Status) ProtoMessage() {}

// Reset clears m.
func (m *StatusResponse) Reset() { *m = StatusResponse{} }

// String formats m.
func (m *StatusResponse) String() string { return "{}" }

// ProtoMessage marks a protobuf message.
func (*StatusResponse) ProtoMessage() {}

// registrationServer is the service's handler type.
type registrationServer interface {
	GetInfo(context.Context, *InfoRequest) (*PluginInfo, error)
	NotifyRegistrationStatus(context.Context, *Status) (*StatusResponse, error)
}

const serviceName = "pluginregistration.Registration"

// serviceDesc is the Registration service as the kubelet calls it.
var serviceDesc = grpc.ServiceDesc{
	ServiceName: serviceName,
	HandlerType: (*registrationServer)(nil),
	Methods: []grpc.MethodDesc{
		{MethodName: "GetInfo", Handler: unary("GetInfo", func(ctx context.Context, s registrationServer, in *InfoRequest) (any, error) {
			return s.GetInfo(ctx, in)
		})},
		{MethodName: "NotifyRegistrationStatus", Handler: unary("NotifyRegistrationStatus", func(ctx context.Context, s registrationServer, in *Status) (any, error) {
			return s.NotifyRegistrationStatus(ctx, in)
		})},
	},
	Metadata: "api.proto",
}

// unary builds a method handler that decodes a *Req and calls call,
// through the server's interceptor if there is one.
func unary[Req any](method string, call func(context.Context, registrationServer, *Req) (any, error)) grpc.MethodHandler {
	return func(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
		in := new(Req)
		if err := dec(in); err != nil {
			return nil, err
		}
		s := srv.(registrationServer)
		if interceptor == nil {
			return call(ctx, s, in)
		}
		info := &grpc.UnaryServerInfo{Server: srv, FullMethod: "/" + serviceName + "/" + method}
		return interceptor(ctx, in, info, func(ctx context.Context, req any) (any, error) {
			return call(ctx, s, req.(*Req))
		})
	}
}
