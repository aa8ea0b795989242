package imagediff

import (
	"bytes"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/aymanbagabas/go-udiff"
)

// isText reports whether b looks like text: valid UTF-8 without NUL bytes.
func isText(b []byte) bool {
	return utf8.Valid(b) && bytes.IndexByte(b, 0) < 0
}

// diffContext is the number of unchanged lines shown around a change.
const diffContext = 3

// lineHunks returns the hunks of a line diff of a and b (go-udiff, the
// Myers diff of the Go tools), with diffContext lines of context.
func lineHunks(a, b []byte) []*udiff.Hunk {
	sa, sb := string(a), string(b)
	u, err := udiff.ToUnifiedDiff("", "", sa, udiff.Lines(sa, sb), diffContext)
	if err != nil {
		// Cannot happen: the edits were computed from sa.
		panic(fmt.Sprintf("imagediff: inconsistent line edits: %v", err))
	}
	return u.Hunks
}

// unifiedDiff renders a unified diff (without file headers) of a and b, at
// most maxLines lines (maxLines <= 0: unlimited). The hunk ranges are
// written as GNU diff writes them ("-4,0" for an insertion after line 4),
// which go-udiff's own rendering does not always do.
func unifiedDiff(a, b []byte, maxLines int) string {
	var lines []string
	for _, h := range lineHunks(a, b) {
		var na, nb int
		for _, l := range h.Lines {
			if l.Kind != udiff.Insert {
				na++
			}
			if l.Kind != udiff.Delete {
				nb++
			}
		}
		lines = append(lines, fmt.Sprintf("@@ -%s +%s @@", hunkRange(h.FromLine-1, na), hunkRange(h.ToLine-1, nb)))
		for _, l := range h.Lines {
			mark := map[udiff.OpKind]string{udiff.Equal: " ", udiff.Delete: "-", udiff.Insert: "+"}[l.Kind]
			if content, ok := strings.CutSuffix(l.Content, "\n"); ok {
				lines = append(lines, mark+content)
			} else {
				lines = append(lines, mark+l.Content, `\ No newline at end of file`)
			}
		}
	}
	if maxLines > 0 && len(lines) > maxLines {
		more := len(lines) - maxLines
		lines = append(lines[:maxLines], fmt.Sprintf("… %d more diff lines", more))
	}
	return strings.Join(lines, "\n")
}

// hunkRange formats a unified-diff range from a 0-based start and a count:
// a range of no lines names the line before it.
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
