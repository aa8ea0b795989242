package imagediff

import (
	"math/rand"
	"strings"
	"testing"

	"github.com/aymanbagabas/go-udiff"
)

func TestUnifiedDiff(t *testing.T) {
	tests := []struct {
		name string
		a, b string
		max  int
		want string
	}{
		{
			name: "single line",
			a:    "old\n", b: "new\n",
			want: "@@ -1 +1 @@\n-old\n+new",
		},
		{
			name: "context and two hunks",
			a:    "1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n11\n12\n",
			b:    "1\nTWO\n3\n4\n5\n6\n7\n8\n9\n10\n11\n12\n13\n",
			want: "@@ -1,5 +1,5 @@\n 1\n-2\n+TWO\n 3\n 4\n 5\n@@ -10,3 +10,4 @@\n 10\n 11\n 12\n+13",
		},
		{
			name: "insert into empty",
			a:    "", b: "x\n",
			want: "@@ -0,0 +1 @@\n+x",
		},
		{
			name: "insertion and deletion in the middle",
			// As GNU diff -u writes it.
			a:    "1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n11\n12\n13\n14\n15\n16\n17\n18\n19\n20\n",
			b:    "1\n2\n3\n4\nnew\n5\n6\n7\n8\n9\n10\n11\n12\n13\n14\n16\n17\n18\n19\n20\n",
			want: "@@ -2,6 +2,7 @@\n 2\n 3\n 4\n+new\n 5\n 6\n 7\n@@ -12,7 +13,6 @@\n 12\n 13\n 14\n-15\n 16\n 17\n 18",
		},
		{
			name: "delete everything",
			a:    "a\nb\n", b: "",
			want: "@@ -1,2 +0,0 @@\n-a\n-b",
		},
		{
			name: "missing trailing newline",
			a:    "a\nb\n", b: "a\nb",
			want: "@@ -1,2 +1,2 @@\n a\n-b\n+b\n\\ No newline at end of file",
		},
		{
			name: "truncated",
			a:    "a\nb\nc\n", b: "A\nB\nC\n", max: 3,
			want: "@@ -1,3 +1,3 @@\n-a\n-b\n… 4 more diff lines",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := unifiedDiff([]byte(tc.a), []byte(tc.b), tc.max); got != tc.want {
				t.Errorf("got:\n%s\nwant:\n%s", got, tc.want)
			}
		})
	}
}

// lcsLen is a reference O(n*m) longest common subsequence length.
func lcsLen(a, b []string) int {
	dp := make([][]int, len(a)+1)
	for i := range dp {
		dp[i] = make([]int, len(b)+1)
	}
	for i := len(a) - 1; i >= 0; i-- {
		for j := len(b) - 1; j >= 0; j-- {
			if a[i] == b[j] {
				dp[i][j] = dp[i+1][j+1] + 1
			} else {
				dp[i][j] = max(dp[i+1][j], dp[i][j+1])
			}
		}
	}
	return dp[0][0]
}

func TestLineDiffMinimalAndValid(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	gen := func() []string {
		n := rng.Intn(30)
		out := make([]string, n)
		for i := range out {
			out[i] = string(rune('a'+rng.Intn(4))) + "\n"
		}
		return out
	}
	for iter := 0; iter < 500; iter++ {
		a, b := gen(), gen()
		// Outside the hunks the lines are equal: the hunks must rebuild
		// both sides from the unchanged lines between them.
		var ra, rb []string
		equal, ai, bi := 0, 0, 0
		for _, h := range lineHunks([]byte(strings.Join(a, "")), []byte(strings.Join(b, ""))) {
			for ; ai < h.FromLine-1; ai, bi = ai+1, bi+1 {
				if a[ai] != b[bi] {
					t.Fatalf("line %d differs outside the hunks:\na=%q\nb=%q", ai+1, a, b)
				}
				ra, rb, equal = append(ra, a[ai]), append(rb, b[bi]), equal+1
			}
			for _, l := range h.Lines {
				switch l.Kind {
				case udiff.Equal:
					ra, rb, equal, ai, bi = append(ra, l.Content), append(rb, l.Content), equal+1, ai+1, bi+1
				case udiff.Delete:
					ra, ai = append(ra, l.Content), ai+1
				case udiff.Insert:
					rb, bi = append(rb, l.Content), bi+1
				}
			}
		}
		for ; ai < len(a) && bi < len(b); ai, bi = ai+1, bi+1 {
			ra, rb, equal = append(ra, a[ai]), append(rb, b[bi]), equal+1
		}
		if strings.Join(ra, "") != strings.Join(a, "") || strings.Join(rb, "") != strings.Join(b, "") {
			t.Fatalf("edit script does not reproduce inputs:\na=%q\nb=%q", a, b)
		}
		if want := lcsLen(a, b); equal != want {
			t.Fatalf("edit script keeps %d lines, LCS is %d:\na=%q\nb=%q", equal, want, a, b)
		}
	}
}

func TestLineDiffLarge(t *testing.T) {
	// Many differences: the diff is still valid and truncated for display.
	var a, b []string
	for i := 0; i < 400; i++ {
		a = append(a, "a\n", "x\n")
		b = append(b, "b\n", "x\n")
	}
	var del, ins int
	for _, h := range lineHunks([]byte(strings.Join(a, "")), []byte(strings.Join(b, ""))) {
		for _, l := range h.Lines {
			switch l.Kind {
			case udiff.Delete:
				del++
			case udiff.Insert:
				ins++
			}
		}
	}
	if del == 0 || ins == 0 || del > len(a) || ins > len(b) {
		t.Errorf("del=%d ins=%d", del, ins)
	}
	if d := unifiedDiff([]byte(strings.Join(a, "")), []byte(strings.Join(b, "")), 10); strings.Count(d, "\n") != 10 {
		t.Errorf("diff not truncated to 10 lines + note:\n%s", d)
	}
}

func TestHexExcerpts(t *testing.T) {
	a := []byte("\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f" + "0123456789abcdef" + "ghijklmnopqrstuv")
	b := append([]byte(nil), a...)
	b[40] = 'Z'
	ha, hb := hexExcerpts(a, b, 64)
	wantA := "00000010  30 31 32 33 34 35 36 37  38 39 61 62 63 64 65 66  |0123456789abcdef|\n" +
		"00000020  67 68 69 6a 6b 6c 6d 6e  6f 70 71 72 73 74 75 76  |ghijklmnopqrstuv|"
	if ha != wantA {
		t.Errorf("hexA:\n%s\nwant:\n%s", ha, wantA)
	}
	if !strings.Contains(hb, "|ghijklmnZpqrstuv|") {
		t.Errorf("hexB:\n%s", hb)
	}
	// b is a prefix of a: excerpt of b ends.
	ha, hb = hexExcerpts(a, a[:16], 64)
	if !strings.HasPrefix(ha, "00000000") || !strings.HasPrefix(hb, "00000000") {
		t.Errorf("prefix case:\n%s\n%s", ha, hb)
	}
	if _, hb = hexExcerpts(a, nil, 64); hb != "(end of data at offset 0x0)" {
		t.Errorf("empty case: %q", hb)
	}
}

func TestIsText(t *testing.T) {
	for in, want := range map[string]bool{"hello\n": true, "héllo": true, "a\x00b": false, "\xff\xfe": false, "": true} {
		if got := isText([]byte(in)); got != want {
			t.Errorf("isText(%q) = %v", in, got)
		}
	}
}

func TestCleanPath(t *testing.T) {
	for in, want := range map[string]string{
		"./etc/passwd": "etc/passwd", "/etc/": "etc", "etc//x/": "etc/x", "./": ".", "/": ".", ".//./a": "a", "a/../b": "b",
	} {
		if got := cleanPath(in); got != want {
			t.Errorf("cleanPath(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestDiffJSON(t *testing.T) {
	a := `{"created":"1970","config":{"Env":["A=1","B=2"],"Labels":{"org.opencontainers.image.created":"x"}},"n":1.0,"gone":true}`
	b := `{"created":"2026","config":{"Env":["A=1"],"Labels":{"org.opencontainers.image.created":"y"}},"n":1,"new":{"k":[1]}}`
	got, err := diffJSON([]byte(a), []byte(b))
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, c := range got {
		lines = append(lines, c.Path+" "+string(c.A)+" "+string(c.B))
	}
	want := []string{
		`$.config.Env[1] "B=2" `,
		`$.config.Labels["org.opencontainers.image.created"] "x" "y"`,
		`$.created "1970" "2026"`,
		`$.gone true `,
		`$.n 1.0 1`,
		`$.new  {"k":[1]}`,
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("got:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
	if _, err := diffJSON([]byte("{"), []byte("{}")); err == nil {
		t.Errorf("invalid JSON accepted")
	}
}
