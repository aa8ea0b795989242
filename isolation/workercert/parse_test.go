package workercert_test

import (
	"fmt"
	"reflect"
	"testing"

	"github.com/twinforge/twinforge/isolation/workercert"
)

func TestParseWorkers(t *testing.T) {
	got, err := workercert.ParseWorkers([]string{"a=a.example", "b=b.example,10.0.0.2"})
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string][]string{"a": {"a.example"}, "b": {"b.example", "10.0.0.2"}}; !reflect.DeepEqual(got, want) {
		t.Errorf("ParseWorkers = %v, want %v", got, want)
	}
	for _, bad := range []string{"a", "=a.example", "a="} {
		if _, err := workercert.ParseWorkers([]string{bad}); err == nil || err.Error() != fmt.Sprintf("--worker %q: use NAME=HOST[,HOST...]", bad) {
			t.Errorf("ParseWorkers(%q): error %v", bad, err)
		}
	}
}
