package imagediff

import (
	"bufio"
	"fmt"
	"io"
	"strings"
)

// WriteText renders the report for humans, diffoscope-style:
//
//	--- a: sha256:aaa… (linux/amd64)
//	+++ b: sha256:bbb… (linux/amd64)
//	manifest:
//	  $.layers[1].digest: "sha256:…" → "sha256:…"
//	config:
//	  $.created: "1970-01-01T00:00:00Z" → "2026-…"
//	layer 1 (diffID sha256:… → sha256:…):
//	  changed  etc/build-time  mtime: 0 → 1764000000; content: sha256:… → sha256:…
//	    why: the content records a time of day (00:00:00 → 13:40:01): it depends on the clock when the step ran
//	    @@ -1 +1 @@
//	    -Thu Jan  1 00:00:00 UTC 1970
//	    +Tue Nov 25 13:40:01 UTC 2026
//	  added    tmp/random  file 0644 0:0 16 bytes
//
// Added JSON values render as "(absent) → value", removed ones as
// "value → (absent)". Long JSON values are shortened with "…" (the JSON
// encoding of the Report carries them in full).
func (r *Report) WriteText(w io.Writer) error {
	bw := bufio.NewWriter(w)
	p := func(format string, args ...any) { fmt.Fprintf(bw, format, args...) }

	p("--- a: %s (%s)\n", r.A.Digest, r.A.Platform)
	p("+++ b: %s (%s)\n", r.B.Digest, r.B.Platform)
	if r.Equal() {
		p("images are identical\n")
		return bw.Flush()
	}
	if r.A.MediaType != r.B.MediaType {
		p("media type: %s → %s\n", r.A.MediaType, r.B.MediaType)
	}
	for _, n := range r.Notes {
		p("note: %s\n", n)
	}
	writeJSONChanges(bw, "manifest", r.Manifest)
	writeJSONChanges(bw, "config", r.Config)
	for _, l := range r.Layers {
		switch {
		case l.OnlyInA:
			p("layer %d: only in a (digest %s, diffID %s)\n", l.Index, l.ADigest, l.ADiffID)
		case l.OnlyInB:
			p("layer %d: only in b (digest %s, diffID %s)\n", l.Index, l.BDigest, l.BDiffID)
		case l.ADiffID == l.BDiffID:
			p("layer %d (diffID %s):\n", l.Index, l.ADiffID)
			p("  digest: %s → %s\n", l.ADigest, l.BDigest)
		default:
			p("layer %d (diffID %s → %s):\n", l.Index, l.ADiffID, l.BDiffID)
			if l.ADigest != l.ADiffID || l.BDigest != l.BDiffID {
				p("  digest: %s → %s\n", l.ADigest, l.BDigest)
			}
		}
		for _, n := range l.Notes {
			p("  note: %s\n", n)
		}
		for _, f := range l.Files {
			writeFileChange(bw, &f)
		}
		if l.Truncated > 0 {
			p("  … %d more file changes not shown\n", l.Truncated)
		}
	}
	return bw.Flush()
}

func writeJSONChanges(w io.Writer, title string, cs []JSONChange) {
	if len(cs) == 0 {
		return
	}
	fmt.Fprintf(w, "%s:\n", title)
	for _, c := range cs {
		fmt.Fprintf(w, "  %s: %s → %s\n", c.Path, shortJSON(c.A), shortJSON(c.B))
	}
}

func shortJSON(v []byte) string {
	if v == nil {
		return "(absent)"
	}
	s := string(v)
	if r := []rune(s); len(r) > defaultMaxJSONValueChars {
		s = string(r[:defaultMaxJSONValueChars]) + "…"
	}
	return s
}

func writeFileChange(w io.Writer, f *FileChange) {
	var detail string
	switch f.Kind {
	case KindChanged:
		parts := make([]string, 0, len(f.Fields))
		for _, fc := range f.Fields {
			parts = append(parts, fmt.Sprintf("%s: %s → %s", fc.Name, orNone(fc.A), orNone(fc.B)))
		}
		detail = strings.Join(parts, "; ")
	default:
		detail = f.Info
	}
	fmt.Fprintf(w, "  %-8s %s", f.Kind, f.Path)
	if detail != "" {
		fmt.Fprintf(w, "  %s", detail)
	}
	fmt.Fprintln(w)
	indent := func(s string) {
		for _, line := range strings.Split(s, "\n") {
			fmt.Fprintf(w, "    %s\n", line)
		}
	}
	for _, r := range f.Why {
		fmt.Fprintf(w, "    why: %s\n", r.Text)
	}
	if f.TextDiff != "" {
		indent(f.TextDiff)
	}
	if f.HexA != "" || f.HexB != "" {
		fmt.Fprintln(w, "    a:")
		indent("  " + strings.ReplaceAll(f.HexA, "\n", "\n  "))
		fmt.Fprintln(w, "    b:")
		indent("  " + strings.ReplaceAll(f.HexB, "\n", "\n  "))
	}
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}
