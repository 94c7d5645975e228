module github.com/meshcsi/meshcsi/services/sentinel

go 1.26.0
