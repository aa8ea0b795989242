package keyvalue

import (
	"maps"
	"testing"
)

func TestParse(t *testing.T) {
	t.Setenv("TWINFORGE_KV_SET", "from-env")
	for _, tc := range []struct {
		name   string
		values []string
		want   map[string]string
		err    string
	}{
		{"none", nil, nil, ""},
		{"pairs", []string{"a=1", "b=", "c=x=y"}, map[string]string{"a": "1", "b": "", "c": "x=y"}, ""},
		{"from the environment", []string{"TWINFORGE_KV_SET"}, map[string]string{"TWINFORGE_KV_SET": "from-env"}, ""},
		{"unset in the environment", []string{"TWINFORGE_KV_UNSET"}, nil, `--build-arg "TWINFORGE_KV_UNSET": no value given and TWINFORGE_KV_UNSET is not set in the environment`},
		{"no key", []string{"=v"}, nil, `--build-arg "=v": use KEY=VALUE`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse("build-arg", tc.values)
			if tc.err != "" {
				if err == nil || err.Error() != tc.err {
					t.Fatalf("Parse() error = %v; want %q", err, tc.err)
				}
				return
			}
			if err != nil || !maps.Equal(got, tc.want) || (got == nil) != (tc.want == nil) {
				t.Fatalf("Parse() = %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}
