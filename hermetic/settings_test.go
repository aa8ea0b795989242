package hermetic

import "testing"

func TestParseSourceDateEpoch(t *testing.T) {
	for _, tc := range []struct {
		value, env string
		want       int64 // -1: nil
		err        string
	}{
		{want: -1},
		{value: "5", env: "7", want: 5},
		{env: "7", want: 7},
		{value: "0", want: 0},
		{value: "yesterday", err: `SOURCE_DATE_EPOCH "yesterday": use a non-negative number of seconds since 1970`},
		{env: "-1", err: `SOURCE_DATE_EPOCH "-1": use a non-negative number of seconds since 1970`},
	} {
		got, err := ParseSourceDateEpoch(tc.value, tc.env)
		switch {
		case tc.err != "":
			if err == nil || err.Error() != tc.err {
				t.Errorf("ParseSourceDateEpoch(%q, %q): error %v, want %q", tc.value, tc.env, err, tc.err)
			}
		case err != nil:
			t.Errorf("ParseSourceDateEpoch(%q, %q): %v", tc.value, tc.env, err)
		case tc.want == -1 && got != nil, tc.want != -1 && (got == nil || *got != tc.want):
			t.Errorf("ParseSourceDateEpoch(%q, %q) = %v, want %d", tc.value, tc.env, got, tc.want)
		}
	}
}

func TestLockSummary(t *testing.T) {
	l := &Lock{SourceDateEpoch: 9, Images: make([]Image, 2)}
	if got, want := l.Summary("x.lock"), "wrote x.lock (2 images, 0 URLs, 0 git sources, 0 Go modules, SOURCE_DATE_EPOCH=9)"; got != want {
		t.Errorf("Summary = %q, want %q", got, want)
	}
	l.GoSumDB = &GoSumDB{Name: "sum.golang.org", TreeSize: 42}
	if got, want := l.Summary("x.lock"), "wrote x.lock (2 images, 0 URLs, 0 git sources, 0 Go modules, SOURCE_DATE_EPOCH=9)\nGo modules proven in sum.golang.org, tree 42"; got != want {
		t.Errorf("Summary = %q, want %q", got, want)
	}
}
