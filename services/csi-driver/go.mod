module github.com/meshcsi/meshcsi/services/csi-driver

go 1.26.0
