package verify

import "testing"

func TestVersionOrder(t *testing.T) {
	for _, c := range []struct {
		typ, a, b string
		want      int
	}{
		{"deb", "1.1.1k-1", "1.1.1n", -1},
		{"deb", "1.1.1n-0+deb11u3", "1.1.1n", 1},
		{"deb", "1:1.0", "2.0", 1},
		{"deb", "1.0~rc1", "1.0", -1},
		{"deb", "2.36-9", "2.36-9", 0},
		{"golang", "v1.2.3", "v1.10.0", -1},
		{"golang", "v1.0.0-rc.1", "v1.0.0", -1},
		{"apk", "3.0.8-r0", "3.0.10-r0", -1},
	} {
		if got := compareVersions(c.typ, c.a, c.b); got != c.want {
			t.Errorf("compare(%s %s, %s) = %d, want %d", c.typ, c.a, c.b, got, c.want)
		}
	}
}
