package imagediff

import "testing"

func TestExplainMode(t *testing.T) {
	tests := []struct {
		a, b int64
		ok   bool
	}{
		{0o755, 0o750, true},
		{0o644, 0o640, true},
		{0o755, 0o700, true},
		{0o755, 0o644, false}, // the owner's bits differ: not a umask
		{0o755, 0o4755, false},
		{0o755, 0o755, false},
	}
	for _, tt := range tests {
		r, ok := explainMode(tt.a, tt.b)
		if ok != tt.ok || (ok && r.Cause != CauseUmask) {
			t.Errorf("explainMode(%o, %o) = %+v, %v; want ok=%v", tt.a, tt.b, r, ok, tt.ok)
		}
	}
}

func TestExplainContent(t *testing.T) {
	cpus := Hint{Cause: "cpuset", A: "2", B: "1", Text: "the CPU count the step saw"}
	tests := []struct {
		name, a, b string
		hints      []Hint
		cause      string
	}{
		{"date", "Thu Jan  1 00:00:00 UTC 1970\n", "Tue Nov 25 13:40:01 UTC 2026\n", nil, CauseClock},
		{"unix time", "1764078001.123456789\n", "1764078003.987654321\n", nil, CauseClock},
		{"unix time without nanoseconds", "1796278765.%N\n", "1796278766.%N\n", nil, CauseClock},
		{"zone name", "UTC\n", "JST\n", nil, CauseTimeZone},
		{"date in another zone", "Thu Jan  1 00:00:00 UTC 1970\n", "Thu Jan  1 09:00:00 JST 1970\n", nil, CauseTimeZone},
		{"zone without zoneinfo", "UTC\n", "Asia\n", nil, CauseTimeZone},
		{"two other zones", "CET\n", "JST\n", nil, ""},
		{"zone offset", "built +0000\n", "built +0900\n", nil, CauseTimeZone},
		{"cpu count", "2\n", "1\n", []Hint{cpus}, "cpuset"},
		{"cpu count in a line", "cpus=2 mem=4\n", "cpus=2 mem=5\n", []Hint{cpus}, ""},
		{"cpu count unhinted", "2\n", "1\n", nil, ""},
		{"other text", "a=1\nb=2\n", "a=1\nb=3\n", nil, ""},
		{"a number that is no time", "1048576\n", "4096\n", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, ok := explainContent([]byte(tt.a), []byte(tt.b), tt.hints)
			if tt.cause == "" {
				if ok {
					t.Errorf("explained as %+v; want no reason", r)
				}
				return
			}
			if !ok || r.Cause != tt.cause || r.Field != FieldContent || r.Text == "" {
				t.Errorf("reason = %+v, %v; want cause %s", r, ok, tt.cause)
			}
		})
	}
}
