module github.com/meshcsi/meshcsi/libs/logging

go 1.26.0

require go.uber.org/zap v1.28.0

require go.uber.org/multierr v1.11.0 // indirect
