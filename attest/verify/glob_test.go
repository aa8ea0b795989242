package verify

import "testing"

// TestGlob holds the cases of the two glob matchers twinforge once had
// (policies' and admission configurations'), which now share Glob, and the
// edge cases where they disagreed.
func TestGlob(t *testing.T) {
	for _, tc := range []struct {
		pattern, s string
		match      bool
	}{
		// admission configuration patterns
		{"a/*", "a/b", true},
		{"a/*", "a/b/c", false},
		{"a/**", "a/b/c", true},
		{"a/?", "a/b", true},
		{"a/?", "a/bc", false},
		{"a/[bc]", "a/c", true},
		{"a/[!bc]", "a/c", false},
		{"a/[!bc]", "a/d", true},
		{"a.b", "aXb", false},
		{"**", "anything/at/all", true},
		// policy patterns
		{"https://github.com/o/*", "https://github.com/o/r", true},
		{"https://github.com/o/*", "https://github.com/o/r/x", false},
		{"https://github.com/o/**", "https://github.com/o/r/x", true},
		{"https://github.com/o/r?", "https://github.com/o/r2", true},
		{"https://github.com/o/r[0-9]", "https://github.com/o/r7", true},
		{"https://github.com/o/r[!0-9]", "https://github.com/o/r7", false},
		{"https://github.com/o.r/*", "https://github.com/oxr/a", false},
		// A backslash is an ordinary character, in a class too: the
		// policy matcher used to pass it to the regexp as an escape.
		{`a\b`, `a\b`, true},
		{`a\*`, `a\xyz`, true},
		{`a[\]`, `a\`, true},
		{`a[\d]`, "a7", false},
		{`a[\d]`, "ad", true},
		{"a[^b]", "a^", true},
		{"a[^b]", "ac", false},
		{"a[[]", "a[", true},
	} {
		re, err := Glob(tc.pattern)
		if err != nil {
			t.Fatalf("%q: %v", tc.pattern, err)
		}
		if got := re.MatchString(tc.s); got != tc.match {
			t.Errorf("%q matches %q = %v, want %v", tc.pattern, tc.s, got, tc.match)
		}
	}
	for _, bad := range []string{"", "a[", "a[]", "a[!]"} {
		if _, err := Glob(bad); err == nil {
			t.Errorf("%q compiles", bad)
		}
	}
}

// TestSameRepository holds the cases of the two repository comparisons
// twinforge once had (the verifier's and the GitHub source check's).
func TestSameRepository(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		same bool
	}{
		{"https://github.com/org/app", "https://github.com/org/app.git", true},
		{"https://github.com/org/app/", "git+https://github.com/Org/App", true},
		{"git@github.com:org/app.git", "https://github.com/org/app", true},
		{"ssh://git@github.com/org/app", "https://github.com/org/app", false},
		{"https://github.com/evil/app", "https://github.com/org/app", false},
		{"git@github.com:evil/app", "https://github.com/org/app", false},
		{"https://github.com/org/app", "https://gitlab.com/org/app", false},
		{"https://user@github.com/org/app", "https://github.com/org/app", false},
	} {
		if got := SameRepository(tc.a, tc.b); got != tc.same {
			t.Errorf("SameRepository(%q, %q) = %v, want %v", tc.a, tc.b, got, tc.same)
		}
	}
}
