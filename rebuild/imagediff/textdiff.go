package imagediff

import (
	"bytes"
	"fmt"
	"strings"
	"unicode/utf8"
)

// isText reports whether b looks like text: valid UTF-8 without NUL bytes.
func isText(b []byte) bool {
	return utf8.Valid(b) && bytes.IndexByte(b, 0) < 0
}

// splitLines splits b into lines, each keeping its trailing "\n" (the last
// line may lack one).
func splitLines(b []byte) []string {
	var out []string
	s := string(b)
	for len(s) > 0 {
		i := strings.IndexByte(s, '\n')
		if i < 0 {
			out = append(out, s)
			break
		}
		out = append(out, s[:i+1])
		s = s[i+1:]
	}
	return out
}

type opKind byte

const (
	opEqual  opKind = ' '
	opDelete opKind = '-'
	opInsert opKind = '+'
)

type diffOp struct {
	kind opKind
	ai   int // index in a (equal/delete)
	bi   int // index in b (equal/insert)
}

// maxDiffEdits bounds the Myers search; beyond it the differing middle part is
// shown as a whole deletion followed by a whole insertion.
const maxDiffEdits = 500

// lineDiff returns an edit script turning a into b.
func lineDiff(a, b []string) []diffOp {
	pre := 0
	for pre < len(a) && pre < len(b) && a[pre] == b[pre] {
		pre++
	}
	suf := 0
	for suf < len(a)-pre && suf < len(b)-pre && a[len(a)-1-suf] == b[len(b)-1-suf] {
		suf++
	}
	ops := make([]diffOp, 0, len(a)+len(b))
	for i := 0; i < pre; i++ {
		ops = append(ops, diffOp{opEqual, i, i})
	}
	ma, mb := a[pre:len(a)-suf], b[pre:len(b)-suf]
	mid, ok := myers(ma, mb, maxDiffEdits)
	if !ok {
		mid = mid[:0]
		for i := range ma {
			mid = append(mid, diffOp{opDelete, i, 0})
		}
		for j := range mb {
			mid = append(mid, diffOp{opInsert, len(ma), j})
		}
	}
	for _, op := range mid {
		op.ai += pre
		op.bi += pre
		ops = append(ops, op)
	}
	for i := 0; i < suf; i++ {
		ops = append(ops, diffOp{opEqual, len(a) - suf + i, len(b) - suf + i})
	}
	return ops
}

// myers computes a shortest edit script with Myers' O(ND) algorithm, giving up
// (ok=false) when more than maxD edits are needed.
func myers(a, b []string, maxD int) (ops []diffOp, ok bool) {
	n, m := len(a), len(b)
	if n == 0 && m == 0 {
		return nil, true
	}
	maxD = min(maxD, n+m)
	off := maxD + 1
	v := make([]int, 2*maxD+3)
	// trace[d] holds v[-d-1 .. d+1] as it was before step d.
	var trace [][]int
	found := -1
	for d := 0; d <= maxD && found < 0; d++ {
		trace = append(trace, append([]int(nil), v[off-d-1:off+d+2]...))
		for k := -d; k <= d; k += 2 {
			var x int
			if k == -d || (k != d && v[off+k-1] < v[off+k+1]) {
				x = v[off+k+1]
			} else {
				x = v[off+k-1] + 1
			}
			y := x - k
			for x < n && y < m && a[x] == b[y] {
				x++
				y++
			}
			v[off+k] = x
			if x >= n && y >= m {
				found = d
				break
			}
		}
	}
	if found < 0 {
		return nil, false
	}
	x, y := n, m
	var rev []diffOp
	for d := found; d >= 0; d-- {
		tv := trace[d]
		get := func(k int) int { return tv[k+d+1] }
		k := x - y
		var prevK int
		if k == -d || (k != d && get(k-1) < get(k+1)) {
			prevK = k + 1
		} else {
			prevK = k - 1
		}
		prevX := 0
		if d > 0 {
			prevX = get(prevK)
		}
		prevY := prevX - prevK
		if d == 0 {
			prevX, prevY = 0, 0
		}
		for x > prevX && y > prevY {
			x--
			y--
			rev = append(rev, diffOp{opEqual, x, y})
		}
		if d > 0 {
			if x == prevX {
				y--
				rev = append(rev, diffOp{opInsert, x, y})
			} else {
				x--
				rev = append(rev, diffOp{opDelete, x, y})
			}
		}
	}
	for i, j := 0, len(rev)-1; i < j; i, j = i+1, j-1 {
		rev[i], rev[j] = rev[j], rev[i]
	}
	return rev, true
}

const diffContext = 3

// unifiedDiff renders a unified diff (without file headers) of a and b, at
// most maxLines lines (maxLines <= 0: unlimited).
func unifiedDiff(a, b []byte, maxLines int) string {
	la, lb := splitLines(a), splitLines(b)
	ops := lineDiff(la, lb)
	var lines []string
	for i := 0; i < len(ops); {
		if ops[i].kind == opEqual {
			i++
			continue
		}
		// Hunk: extend while the gap of equal lines to the next change is
		// at most 2*diffContext.
		start := max(0, i-diffContext)
		end := i
		for end < len(ops) {
			if ops[end].kind != opEqual {
				end++
				continue
			}
			j := end
			for j < len(ops) && ops[j].kind == opEqual {
				j++
			}
			if j == len(ops) || j-end > 2*diffContext {
				end = min(len(ops), end+diffContext)
				break
			}
			end = j
		}
		lines = append(lines, hunk(ops[start:end], la, lb)...)
		i = end
	}
	if maxLines > 0 && len(lines) > maxLines {
		more := len(lines) - maxLines
		lines = append(lines[:maxLines], fmt.Sprintf("… %d more diff lines", more))
	}
	return strings.Join(lines, "\n")
}

func hunk(ops []diffOp, la, lb []string) []string {
	var na, nb int
	sa, sb := -1, -1
	for _, op := range ops {
		switch op.kind {
		case opEqual:
			na++
			nb++
		case opDelete:
			na++
		case opInsert:
			nb++
		}
		if sa < 0 && op.kind != opInsert {
			sa = op.ai
		}
		if sb < 0 && op.kind != opDelete {
			sb = op.bi
		}
	}
	if sa < 0 {
		sa = ops[0].ai
	}
	if sb < 0 {
		sb = ops[0].bi
	}
	out := []string{fmt.Sprintf("@@ -%s +%s @@", hunkRange(sa, na), hunkRange(sb, nb))}
	for _, op := range ops {
		var l string
		switch op.kind {
		case opEqual, opDelete:
			l = la[op.ai]
		case opInsert:
			l = lb[op.bi]
		}
		if strings.HasSuffix(l, "\n") {
			out = append(out, string(op.kind)+strings.TrimSuffix(l, "\n"))
		} else {
			out = append(out, string(op.kind)+l, `\ No newline at end of file`)
		}
	}
	return out
}

// hunkRange formats a unified-diff range from a 0-based start and a count.
func hunkRange(start, n int) string {
	switch n {
	case 0:
		return fmt.Sprintf("%d,0", start)
	case 1:
		return fmt.Sprintf("%d", start+1)
	default:
		return fmt.Sprintf("%d,%d", start+1, n)
	}
}

// hexExcerpts returns hex.Dump-style excerpts of a and b, with absolute
// offsets, starting one row before the row holding the first differing byte
// and covering n bytes.
func hexExcerpts(a, b []byte, n int) (string, string) {
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	start := max(0, i/16*16-16)
	return hexDumpAt(a, start, n), hexDumpAt(b, start, n)
}

func hexDumpAt(b []byte, start, n int) string {
	if start >= len(b) {
		return fmt.Sprintf("(end of data at offset %#x)", len(b))
	}
	end := min(len(b), start+n)
	var sb strings.Builder
	for row := start; row < end; row += 16 {
		fmt.Fprintf(&sb, "%08x ", row)
		for j := 0; j < 16; j++ {
			if j == 8 {
				sb.WriteByte(' ')
			}
			if row+j < end {
				fmt.Fprintf(&sb, " %02x", b[row+j])
			} else {
				sb.WriteString("   ")
			}
		}
		sb.WriteString("  |")
		for j := row; j < min(end, row+16); j++ {
			c := b[j]
			if c < 32 || c > 126 {
				c = '.'
			}
			sb.WriteByte(c)
		}
		sb.WriteString("|\n")
	}
	return strings.TrimSuffix(sb.String(), "\n")
}
