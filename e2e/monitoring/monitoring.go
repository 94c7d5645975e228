// Package monitoring lists the series the chart's alert rules and Grafana
// dashboard read, so the chart tests can check the files use nothing else
// and the e2e suite can check a real scrape of the driver has every one.
package monitoring

// DriverMetrics are the series the shipped rules and dashboard may use.
var DriverMetrics = []string{
	"up",
	"meshcsi_csi_operations_total",
	"meshcsi_csi_operation_duration_seconds_bucket",
	"meshcsi_published_volumes",
	"meshcsi_source_ready",
	"process_resident_memory_bytes",
}
