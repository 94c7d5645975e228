module github.com/meshcsi/meshcsi/libs/roottest

go 1.26.0
