module github.com/meshcsi/meshcsi/libs/signals

go 1.26.0
