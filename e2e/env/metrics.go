package env

import (
	"strconv"
	"strings"
)

// MetricValue sums the samples of metric in a text exposition whose labels
// include every name="value" pair in labels.
func MetricValue(exposition, metric string, labels ...string) (float64, bool) {
	var sum float64
	found := false
	for _, line := range strings.Split(exposition, "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		name, rest := line, ""
		if i := strings.IndexAny(line, "{ "); i >= 0 {
			name, rest = line[:i], line[i:]
		}
		if name != metric {
			continue
		}
		lbls, value := "", strings.TrimSpace(rest)
		if strings.HasPrefix(rest, "{") {
			end := strings.LastIndex(rest, "}")
			lbls, value = rest[1:end], strings.TrimSpace(rest[end+1:])
		}
		ok := true
		for _, l := range labels {
			if !strings.Contains(","+lbls+",", ","+l+",") {
				ok = false
			}
		}
		if !ok {
			continue
		}
		fields := strings.Fields(value)
		if len(fields) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			continue
		}
		sum += v
		found = true
	}
	return sum, found
}
