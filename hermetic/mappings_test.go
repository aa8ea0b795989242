package hermetic

import (
	"maps"
	"testing"
)

func TestParseImageMappings(t *testing.T) {
	for _, tc := range []struct {
		values []string
		want   map[string]string
		err    string
	}{
		{values: nil},
		{values: []string{"example.test/base:1=oci-layout:examples/base/out", "example.test/base:1=oci-layout:examples/base/out"},
			want: map[string]string{"example.test/base:1": "oci-layout:examples/base/out"}},
		{values: []string{"b=oci-layout:dir:tag"}, want: map[string]string{"b": "oci-layout:dir:tag"}},
		{values: []string{"bad"}, err: `--image "bad": use NAME=oci-layout:PATH[:TAG], e.g. example.test/base:1=oci-layout:examples/base/out`},
		{values: []string{"=oci-layout:x"}, err: `--image "=oci-layout:x": use NAME=oci-layout:PATH[:TAG], e.g. example.test/base:1=oci-layout:examples/base/out`},
		{values: []string{"b=oci-layout:"}, err: `--image "b=oci-layout:": use NAME=oci-layout:PATH[:TAG], e.g. example.test/base:1=oci-layout:examples/base/out`},
		{values: []string{"b=docker:x"}, err: `--image "b=docker:x": use NAME=oci-layout:PATH[:TAG], e.g. example.test/base:1=oci-layout:examples/base/out`},
		{values: []string{"b=oci-layout:x", "b=oci-layout:y"}, err: "--image b is given twice"},
	} {
		got, err := ParseImageMappings(tc.values)
		if (err == nil) != (tc.err == "") || err != nil && err.Error() != tc.err || !maps.Equal(got, tc.want) {
			t.Errorf("ParseImageMappings(%q) = %v, %v; want %v, %q", tc.values, got, err, tc.want, tc.err)
		}
	}
}
