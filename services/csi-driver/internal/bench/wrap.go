package bench

import "google.golang.org/protobuf/types/known/wrapperspb"

func wrapBool(v bool) *wrapperspb.BoolValue { return wrapperspb.Bool(v) }
