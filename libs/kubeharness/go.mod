module github.com/meshcsi/meshcsi/libs/kubeharness

go 1.26.0
