package app

import (
	"testing"
	"testing/fstest"
)

func TestMemoryLimit(t *testing.T) {
	fsys := fstest.MapFS{
		"memory.max":                                 {Data: []byte("max\n")},
		"kubepods/pod1/c1/memory.max":                {Data: []byte("134217728\n")},
		"memory/kubepods/pod2/memory.limit_in_bytes": {Data: []byte("67108864\n")},
		"memory/memory.limit_in_bytes":               {Data: []byte("9223372036854771712\n")},
	}
	tests := []struct {
		name, self string
		want       int64
		ok         bool
	}{
		{"v2 limited", "0::/kubepods/pod1/c1\n", 128 << 20, true},
		{"v2 namespaced root without limit", "0::/\n", 0, false},
		{"v1 limited", "4:memory:/kubepods/pod2\n3:cpu:/\n", 64 << 20, true},
		{"v1 controller list", "4:cpuacct,memory:/kubepods/pod2\n", 64 << 20, true},
		{"v1 unlimited", "4:memory:/elsewhere\n", 0, false},
		{"nothing", "", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := memoryLimit(fsys, tt.self)
			if got != tt.want || ok != tt.ok {
				t.Fatalf("memoryLimit() = %d, %v; want %d, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}
