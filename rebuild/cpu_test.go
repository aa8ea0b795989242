package rebuild

import "testing"

func TestCPUSetWithoutBusiest(t *testing.T) {
	tests := []struct {
		name string
		idle map[int]int64
		want string
	}{
		{"none", nil, ""},
		{"one CPU", map[int]int64{0: 5}, ""},
		{"two CPUs: the idlest", map[int]int64{0: 2, 1: 9}, "1"},
		{"two CPUs, equally busy: the lower", map[int]int64{0: 4, 1: 4}, "0"},
		{"four CPUs: all but the busiest", map[int]int64{0: 7, 1: 8, 2: 1, 3: 9}, "0,1,3"},
		{"sparse affinity", map[int]int64{2: 3, 5: 3, 7: 0}, "2,5"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := cpuSetWithoutBusiest(tt.idle); got != tt.want {
				t.Errorf("cpuSetWithoutBusiest(%v) = %q, want %q", tt.idle, got, tt.want)
			}
		})
	}
}
