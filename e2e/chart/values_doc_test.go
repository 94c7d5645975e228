//go:build chart

package chart

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestEveryValueDocumented: every key of values.yaml has a comment right
// above it, except the entries of free-form maps (sources, resources, node
// selectors, labels, SELinux options), which their map's comment explains.
func TestEveryValueDocumented(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(chartDir(t), "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	freeForm := map[string]bool{
		"sources": true, "resources": true, "requests": true, "limits": true, "nodeSelector": true,
		"labels": true, "seLinuxOptions": true,
	}
	lines := strings.Split(string(raw), "\n")
	var parents []string // key at each indentation level (2 spaces)
	checked := 0
	for i, line := range lines {
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "#") || strings.HasPrefix(trimmed, "- ") {
			continue
		}
		key, _, ok := strings.Cut(trimmed, ":")
		if !ok {
			continue
		}
		level := (len(line) - len(strings.TrimLeft(line, " "))) / 2
		if level > len(parents) {
			continue // inside a list item or a deeper free-form value
		}
		parents = append(parents[:level], key)
		free := false
		for _, p := range parents[:level] {
			if freeForm[p] {
				free = true
			}
		}
		if free {
			continue
		}
		checked++
		if i == 0 || !strings.HasPrefix(strings.TrimSpace(lines[i-1]), "#") {
			t.Errorf("values.yaml:%d: %s has no comment above it", i+1, strings.Join(parents, "."))
		}
	}
	if checked < 40 {
		t.Fatalf("only %d keys checked; the parser is off", checked)
	}
}
