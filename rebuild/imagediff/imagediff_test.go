package imagediff

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func findFile(t *testing.T, r *Report, layer int, path string) FileChange {
	t.Helper()
	for _, l := range r.Layers {
		if l.Index != layer {
			continue
		}
		for _, f := range l.Files {
			if f.Path == path {
				return f
			}
		}
	}
	t.Fatalf("no file change for %q in layer %d; report:\n%s", path, layer, dump(r))
	return FileChange{}
}

func field(f FileChange, name string) (FieldChange, bool) {
	for _, fc := range f.Fields {
		if fc.Name == name {
			return fc, true
		}
	}
	return FieldChange{}, false
}

// wantFields checks that f has exactly the named changed fields.
func wantFields(t *testing.T, f FileChange, names ...string) {
	t.Helper()
	var got []string
	for _, fc := range f.Fields {
		got = append(got, fc.Name)
	}
	if strings.Join(got, ",") != strings.Join(names, ",") {
		t.Errorf("%s: changed fields = %v, want %v", f.Path, got, names)
	}
}

func dump(r *Report) string {
	var b bytes.Buffer
	_ = r.WriteText(&b)
	return b.String()
}

func TestCompare(t *testing.T) {
	base := []tfile{
		{name: "etc/", typ: tar.TypeDir},
		{name: "etc/build-time", body: "Thu Jan  1 00:00:00 UTC 1970\n"},
		{name: "app/data", body: "data\n"},
		{name: "bin/tool", body: "\x7fELF\x00\x01\x02\x03 binary payload \x00\x00"},
		{name: "bin/sh", typ: tar.TypeSymlink, link: "busybox"},
	}
	// with returns base with entry name replaced by f (or f appended).
	with := func(f tfile) []tfile {
		out := append([]tfile(nil), base...)
		for i := range out {
			if out[i].name == f.name {
				out[i] = f
				return out
			}
		}
		return append(out, f)
	}
	without := func(name string) []tfile {
		var out []tfile
		for _, f := range base {
			if f.name != name {
				out = append(out, f)
			}
		}
		return out
	}
	big := strings.Repeat("line of text\n", 20)

	tests := []struct {
		name  string
		a, b  func(t *testing.T) imgSpec
		opts  []Option
		check func(t *testing.T, r *Report)
	}{
		{
			name: "identical",
			a:    func(t *testing.T) imgSpec { return imgSpec{layers: [][]byte{tarBytes(t, base...)}} },
			b:    func(t *testing.T) imgSpec { return imgSpec{layers: [][]byte{tarBytes(t, base...)}} },
			check: func(t *testing.T, r *Report) {
				if !r.Equal() {
					t.Fatalf("want Equal, got:\n%s", dump(r))
				}
				if !strings.Contains(dump(r), "images are identical") {
					t.Errorf("text rendering does not say identical:\n%s", dump(r))
				}
			},
		},
		{
			name: "text content change",
			a:    func(t *testing.T) imgSpec { return imgSpec{layers: [][]byte{tarBytes(t, base...)}} },
			b: func(t *testing.T) imgSpec {
				return imgSpec{layers: [][]byte{tarBytes(t, with(tfile{name: "etc/build-time", body: "Tue Nov 25 13:40:01 UTC 2026\n"})...)}}
			},
			check: func(t *testing.T, r *Report) {
				f := findFile(t, r, 0, "etc/build-time")
				if f.Kind != KindChanged {
					t.Errorf("kind = %q", f.Kind)
				}
				wantFields(t, f, FieldContent)
				for _, want := range []string{"@@ -1 +1 @@", "-Thu Jan  1 00:00:00 UTC 1970", "+Tue Nov 25 13:40:01 UTC 2026"} {
					if !strings.Contains(f.TextDiff, want) {
						t.Errorf("TextDiff missing %q:\n%s", want, f.TextDiff)
					}
				}
				if f.HexA != "" || f.HexB != "" {
					t.Errorf("unexpected hex excerpt for text file")
				}
				if len(r.Layers[0].Files) != 1 {
					t.Errorf("want 1 file change, got:\n%s", dump(r))
				}
				if len(r.Config) == 0 || len(r.Manifest) == 0 {
					t.Errorf("want diff_ids/layer digest JSON changes, got:\n%s", dump(r))
				}
			},
		},
		{
			name: "binary content change",
			a:    func(t *testing.T) imgSpec { return imgSpec{layers: [][]byte{tarBytes(t, base...)}} },
			b: func(t *testing.T) imgSpec {
				return imgSpec{layers: [][]byte{tarBytes(t, with(tfile{name: "bin/tool", body: "\x7fELF\x00\x01\x02\x03 binary pAyload \x00\x00"})...)}}
			},
			check: func(t *testing.T, r *Report) {
				f := findFile(t, r, 0, "bin/tool")
				wantFields(t, f, FieldContent)
				if f.TextDiff != "" {
					t.Errorf("unexpected text diff for binary file: %q", f.TextDiff)
				}
				if !strings.HasPrefix(f.HexA, "00000000  7f 45 4c 46") || !strings.Contains(f.HexA, "payload") || !strings.Contains(f.HexB, "pAyload") {
					t.Errorf("hex excerpts:\n%s\n%s", f.HexA, f.HexB)
				}
			},
		},
		{
			name: "mode change",
			a:    func(t *testing.T) imgSpec { return imgSpec{layers: [][]byte{tarBytes(t, base...)}} },
			b: func(t *testing.T) imgSpec {
				return imgSpec{layers: [][]byte{tarBytes(t, with(tfile{name: "app/data", body: "data\n", mode: 0o664})...)}}
			},
			check: func(t *testing.T, r *Report) {
				f := findFile(t, r, 0, "app/data")
				wantFields(t, f, FieldMode)
				if fc, _ := field(f, FieldMode); fc.A != "0644" || fc.B != "0664" {
					t.Errorf("mode change = %+v", fc)
				}
				if !strings.Contains(dump(r), "app/data  mode: 0644 → 0664") {
					t.Errorf("text:\n%s", dump(r))
				}
			},
		},
		{
			name: "mtime change",
			a:    func(t *testing.T) imgSpec { return imgSpec{layers: [][]byte{tarBytes(t, base...)}} },
			b: func(t *testing.T) imgSpec {
				return imgSpec{layers: [][]byte{tarBytes(t, with(tfile{name: "etc/", typ: tar.TypeDir, mtime: 1764000000})...)}}
			},
			check: func(t *testing.T, r *Report) {
				f := findFile(t, r, 0, "etc")
				wantFields(t, f, FieldMtime)
				if fc, _ := field(f, FieldMtime); fc.A != "0" || fc.B != "1764000000" {
					t.Errorf("mtime change = %+v", fc)
				}
			},
		},
		{
			name: "symlink target change",
			a:    func(t *testing.T) imgSpec { return imgSpec{layers: [][]byte{tarBytes(t, base...)}} },
			b: func(t *testing.T) imgSpec {
				return imgSpec{layers: [][]byte{tarBytes(t, with(tfile{name: "bin/sh", typ: tar.TypeSymlink, link: "dash"})...)}}
			},
			check: func(t *testing.T, r *Report) {
				f := findFile(t, r, 0, "bin/sh")
				wantFields(t, f, FieldLinkname)
				if fc, _ := field(f, FieldLinkname); fc.A != "busybox" || fc.B != "dash" {
					t.Errorf("linkname change = %+v", fc)
				}
			},
		},
		{
			name: "uid change",
			a:    func(t *testing.T) imgSpec { return imgSpec{layers: [][]byte{tarBytes(t, base...)}} },
			b: func(t *testing.T) imgSpec {
				return imgSpec{layers: [][]byte{tarBytes(t, with(tfile{name: "app/data", body: "data\n", uid: 1000})...)}}
			},
			check: func(t *testing.T, r *Report) {
				f := findFile(t, r, 0, "app/data")
				wantFields(t, f, FieldUID)
				if fc, _ := field(f, FieldUID); fc.A != "0" || fc.B != "1000" {
					t.Errorf("uid change = %+v", fc)
				}
			},
		},
		{
			name: "xattr change",
			a:    func(t *testing.T) imgSpec { return imgSpec{layers: [][]byte{tarBytes(t, base...)}} },
			b: func(t *testing.T) imgSpec {
				return imgSpec{layers: [][]byte{tarBytes(t, with(tfile{name: "app/data", body: "data\n", xattrs: map[string]string{"user.k": "v"}})...)}}
			},
			check: func(t *testing.T, r *Report) {
				f := findFile(t, r, 0, "app/data")
				wantFields(t, f, FieldXattrs)
				fc, ok := field(f, FieldXattrs)
				if !ok || fc.A != "" || fc.B != `user.k="v"` {
					t.Errorf("xattrs change = %+v (fields %+v)", fc, f.Fields)
				}
			},
		},
		{
			name: "tar header format only",
			a:    func(t *testing.T) imgSpec { return imgSpec{layers: [][]byte{tarBytes(t, base...)}} },
			b: func(t *testing.T) imgSpec {
				return imgSpec{layers: [][]byte{tarBytes(t, with(tfile{name: "app/data", body: "data\n", format: tar.FormatGNU})...)}}
			},
			check: func(t *testing.T, r *Report) {
				f := findFile(t, r, 0, "app/data")
				wantFields(t, f, FieldFormat)
				if fc, _ := field(f, FieldFormat); fc.A != "USTAR" || fc.B != "GNU" {
					t.Errorf("format change = %+v", fc)
				}
			},
		},
		{
			name: "tar padding only",
			a:    func(t *testing.T) imgSpec { return imgSpec{layers: [][]byte{tarBytes(t, base...)}} },
			b: func(t *testing.T) imgSpec {
				return imgSpec{layers: [][]byte{append(tarBytes(t, base...), make([]byte, 4096)...)}}
			},
			check: func(t *testing.T, r *Report) {
				if len(r.Layers) != 1 || len(r.Layers[0].Files) != 0 || r.Layers[0].OrderDiffers ||
					len(r.Layers[0].Notes) != 1 || !strings.Contains(r.Layers[0].Notes[0], "differ only in encoding") {
					t.Errorf("layers:\n%s", dump(r))
				}
			},
		},
		{
			name: "added and removed files",
			a:    func(t *testing.T) imgSpec { return imgSpec{layers: [][]byte{tarBytes(t, base...)}} },
			b: func(t *testing.T) imgSpec {
				files := append(without("app/data"), tfile{name: "./tmp/random", body: "0123456789abcdef"})
				return imgSpec{layers: [][]byte{tarBytes(t, files...)}}
			},
			check: func(t *testing.T, r *Report) {
				if f := findFile(t, r, 0, "tmp/random"); f.Kind != KindAdded || f.Info != "file 0644 0:0 16 bytes" {
					t.Errorf("added: %+v", f)
				}
				if f := findFile(t, r, 0, "app/data"); f.Kind != KindRemoved {
					t.Errorf("removed: %+v", f)
				}
				if r.Layers[0].OrderDiffers {
					t.Errorf("order of common entries is unchanged, OrderDiffers set")
				}
			},
		},
		{
			name: "extra layer",
			a:    func(t *testing.T) imgSpec { return imgSpec{layers: [][]byte{tarBytes(t, base...)}} },
			b: func(t *testing.T) imgSpec {
				return imgSpec{layers: [][]byte{tarBytes(t, base...), tarBytes(t, tfile{name: "extra", body: "x"})}}
			},
			check: func(t *testing.T, r *Report) {
				if len(r.Layers) != 1 || !r.Layers[0].OnlyInB || r.Layers[0].Index != 1 || r.Layers[0].BDiffID == "" {
					t.Fatalf("layers:\n%s", dump(r))
				}
				if f := findFile(t, r, 1, "extra"); f.Kind != KindAdded {
					t.Errorf("extra layer file: %+v", f)
				}
				if !hasJSONPath(r.Manifest, "$.layers[1]") || !hasJSONPath(r.Config, "$.rootfs.diff_ids[1]") {
					t.Errorf("JSON changes:\n%s", dump(r))
				}
				if c := jsonChange(r.Config, "$.rootfs.diff_ids[1]"); c.A != nil || c.B == nil {
					t.Errorf("added diff_id should have only B: %+v", c)
				}
			},
		},
		{
			name: "config env change",
			a: func(t *testing.T) imgSpec {
				return imgSpec{layers: [][]byte{tarBytes(t, base...)}, env: []string{"PATH=/bin", "A=1", "TZ=UTC"}}
			},
			b: func(t *testing.T) imgSpec {
				return imgSpec{layers: [][]byte{tarBytes(t, base...)}, env: []string{"PATH=/bin", "A=1", "TZ=CET"}}
			},
			check: func(t *testing.T, r *Report) {
				if len(r.Config) != 1 {
					t.Fatalf("config changes:\n%s", dump(r))
				}
				c := r.Config[0]
				if c.Path != "$.config.Env[2]" || string(c.A) != `"TZ=UTC"` || string(c.B) != `"TZ=CET"` {
					t.Errorf("config change = %s %s %s", c.Path, c.A, c.B)
				}
				if len(r.Layers) != 0 {
					t.Errorf("unexpected layer diffs:\n%s", dump(r))
				}
				if !hasJSONPath(r.Manifest, "$.config.digest") {
					t.Errorf("manifest changes:\n%s", dump(r))
				}
			},
		},
		{
			name: "entry order",
			a:    func(t *testing.T) imgSpec { return imgSpec{layers: [][]byte{tarBytes(t, base...)}} },
			b: func(t *testing.T) imgSpec {
				rev := append([]tfile(nil), base...)
				rev[1], rev[2] = rev[2], rev[1]
				return imgSpec{layers: [][]byte{tarBytes(t, rev...)}}
			},
			check: func(t *testing.T, r *Report) {
				if len(r.Layers) != 1 {
					t.Fatalf("layers:\n%s", dump(r))
				}
				l := r.Layers[0]
				if !l.OrderDiffers || len(l.Files) != 0 {
					t.Errorf("want order-only difference:\n%s", dump(r))
				}
				if txt := dump(r); !strings.Contains(txt, `tar entry order differs: at common entry #2 A has "etc/build-time", B has "app/data"`) {
					t.Errorf("text:\n%s", txt)
				}
			},
		},
		{
			name: "large file over content limit",
			a: func(t *testing.T) imgSpec {
				return imgSpec{layers: [][]byte{tarBytes(t, with(tfile{name: "big.txt", body: big})...)}}
			},
			b: func(t *testing.T) imgSpec {
				return imgSpec{layers: [][]byte{tarBytes(t, with(tfile{name: "big.txt", body: big[:len(big)-5] + "XXXX\n"})...)}}
			},
			opts: []Option{WithMaxContentBytes(64)},
			check: func(t *testing.T, r *Report) {
				f := findFile(t, r, 0, "big.txt")
				wantFields(t, f, FieldContent)
				if fc, _ := field(f, FieldContent); !strings.HasPrefix(fc.A, "sha256:") || fc.A == fc.B {
					t.Errorf("content change = %+v", fc)
				}
				if f.TextDiff != "" || f.HexA != "" || f.HexB != "" {
					t.Errorf("file over the limit got an excerpt: %+v", f)
				}
			},
		},
		{
			name: "text diff line limit",
			a: func(t *testing.T) imgSpec {
				return imgSpec{layers: [][]byte{tarBytes(t, with(tfile{name: "big.txt", body: big})...)}}
			},
			b: func(t *testing.T) imgSpec {
				return imgSpec{layers: [][]byte{tarBytes(t, with(tfile{name: "big.txt", body: strings.ReplaceAll(big, "of", "OF")})...)}}
			},
			opts: []Option{WithMaxTextDiffLines(5)},
			check: func(t *testing.T, r *Report) {
				f := findFile(t, r, 0, "big.txt")
				lines := strings.Split(f.TextDiff, "\n")
				if len(lines) != 6 || lines[5] != "… 36 more diff lines" {
					t.Errorf("TextDiff:\n%s", f.TextDiff)
				}
			},
		},
		{
			name: "file list truncated",
			a:    func(t *testing.T) imgSpec { return imgSpec{layers: [][]byte{tarBytes(t, base...)}} },
			b: func(t *testing.T) imgSpec {
				files := append([]tfile(nil), base...)
				for _, n := range []string{"n1", "n2", "n3", "n4", "n5"} {
					files = append(files, tfile{name: n})
				}
				return imgSpec{layers: [][]byte{tarBytes(t, files...)}}
			},
			opts: []Option{WithMaxFiles(2)},
			check: func(t *testing.T, r *Report) {
				l := r.Layers[0]
				if len(l.Files) != 2 || l.Truncated != 3 || l.Files[0].Path != "n1" {
					t.Errorf("files %+v truncated %d", l.Files, l.Truncated)
				}
				if !strings.Contains(dump(r), "… 3 more file changes not shown") {
					t.Errorf("text:\n%s", dump(r))
				}
			},
		},
		{
			name: "compression only",
			a: func(t *testing.T) imgSpec {
				return imgSpec{layers: [][]byte{tarBytes(t, base...)}}
			},
			b: func(t *testing.T) imgSpec {
				return imgSpec{layers: [][]byte{tarBytes(t, base...)}, uncompressed: []bool{true}}
			},
			check: func(t *testing.T, r *Report) {
				if len(r.Layers) != 1 {
					t.Fatalf("layers:\n%s", dump(r))
				}
				l := r.Layers[0]
				if l.ADiffID != l.BDiffID || l.ADigest == l.BDigest || len(l.Files) != 0 || len(l.Notes) != 1 {
					t.Errorf("layer diff: %+v", l)
				}
				if !hasJSONPath(r.Manifest, "$.layers[0].mediaType") || len(r.Config) != 0 {
					t.Errorf("JSON changes:\n%s", dump(r))
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := viaLayout(t, buildImage(t, tc.a(t)))
			b := viaLayout(t, buildImage(t, tc.b(t)))
			r, err := Compare(context.Background(), a, b, tc.opts...)
			if err != nil {
				t.Fatal(err)
			}
			if tc.name != "identical" && r.Equal() {
				t.Fatalf("Equal() for different images")
			}
			if r.A.Platform != "linux/amd64" || r.A.MediaType == "" || !strings.HasPrefix(r.A.Digest, "sha256:") {
				t.Errorf("summary A = %+v", r.A)
			}
			tc.check(t, r)
			// Every changed path must appear in the text rendering, and
			// the report must encode as JSON.
			txt := dump(r)
			for _, l := range r.Layers {
				for _, f := range l.Files {
					if !strings.Contains(txt, f.Kind) || !strings.Contains(txt, " "+f.Path) {
						t.Errorf("text rendering lacks %s %s:\n%s", f.Kind, f.Path, txt)
					}
					for _, fc := range f.Fields {
						if !strings.Contains(txt, fc.Name+":") {
							t.Errorf("text rendering lacks field %s:\n%s", fc.Name, txt)
						}
					}
				}
			}
			if _, err := json.Marshal(r); err != nil {
				t.Errorf("json: %v", err)
			}
		})
	}
}

func hasJSONPath(cs []JSONChange, prefix string) bool {
	for _, c := range cs {
		if strings.HasPrefix(c.Path, prefix) {
			return true
		}
	}
	return false
}

func jsonChange(cs []JSONChange, path string) JSONChange {
	for _, c := range cs {
		if c.Path == path {
			return c
		}
	}
	return JSONChange{}
}

func TestComparePlatformMismatch(t *testing.T) {
	layer := tarBytes(t, tfile{name: "a", body: "a"})
	a := buildImage(t, imgSpec{layers: [][]byte{layer}})
	b := buildImage(t, imgSpec{layers: [][]byte{layer}, arch: "arm64"})

	err := CheckComparable(a, b)
	if !errors.Is(err, ErrPlatformMismatch) {
		t.Fatalf("CheckComparable = %v, want ErrPlatformMismatch", err)
	}
	const want = "image A is linux/amd64 but image B is linux/arm64: compare images of the same platform"
	if err.Error() != want {
		t.Errorf("error = %q, want %q", err, want)
	}
	var pm *PlatformMismatchError
	if !errors.As(err, &pm) || pm.B != "linux/arm64" {
		t.Errorf("errors.As: %+v", pm)
	}
	if err := CheckComparable(a, a); err != nil {
		t.Errorf("CheckComparable(a, a) = %v", err)
	}

	// Compare still proceeds.
	r, err := Compare(context.Background(), a, b)
	if err != nil {
		t.Fatal(err)
	}
	if c := jsonChange(r.Config, "$.architecture"); string(c.A) != `"amd64"` || string(c.B) != `"arm64"` {
		t.Errorf("architecture change: %+v\n%s", c, dump(r))
	}
}

func TestCompareCanceled(t *testing.T) {
	a := buildImage(t, imgSpec{layers: [][]byte{tarBytes(t, tfile{name: "a", body: "a"})}})
	b := buildImage(t, imgSpec{layers: [][]byte{tarBytes(t, tfile{name: "a", body: "b"})}})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Compare(ctx, a, b); !errors.Is(err, context.Canceled) {
		t.Errorf("Compare with canceled ctx = %v", err)
	}
}
