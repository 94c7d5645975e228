module github.com/meshcsi/meshcsi/e2e

go 1.26.0
