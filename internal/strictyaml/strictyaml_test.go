package strictyaml

import (
	"errors"
	"strings"
	"testing"
)

func TestDecode(t *testing.T) {
	type doc struct {
		Name string `yaml:"name"`
	}
	for _, tc := range []struct {
		in, want string
	}{
		{"name: a\n", ""},
		{`{"name": "a"}`, ""},
		{"", "empty"},
		{"name: a\nother: b\n", "line 2: field other not found"},
		{"name: a\n---\nname: b\n", "the file holds more than one YAML document"},
		{"name: [\n", "line"},
	} {
		var d doc
		err := Decode([]byte(tc.in), &d)
		switch {
		case tc.want == "" && (err != nil || d.Name != "a"):
			t.Errorf("%q: %v, %+v", tc.in, err, d)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want) || strings.HasPrefix(err.Error(), "yaml: ")):
			t.Errorf("%q: err %v, want %q", tc.in, err, tc.want)
		}
	}
	if err := Decode(nil, &struct{}{}); !errors.Is(err, ErrEmpty) {
		t.Errorf("empty input: %v, want ErrEmpty", err)
	}
}
