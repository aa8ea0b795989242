package imagediff

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// entry is what the first pass keeps per tar entry: header attributes and a
// content hash, never the content itself.
type entry struct {
	typ      byte
	mode     int64
	uid, gid int
	uname    string
	gname    string
	size     int64
	mtime    time.Time
	atime    time.Time
	ctime    time.Time
	linkname string
	devmajor int64
	devminor int64
	xattrs   string
	pax      string
	format   tar.Format
	sum      [sha256.Size]byte
}

type tarIndex struct {
	entries map[string]*entry
	order   []string // cleaned paths in archive order (duplicates kept)
}

type layerInfo struct {
	digest, diffID string
}

func describeLayer(l v1.Layer) (layerInfo, error) {
	d, err := l.Digest()
	if err != nil {
		return layerInfo{}, fmt.Errorf("computing layer digest: %w", err)
	}
	id, err := l.DiffID()
	if err != nil {
		return layerInfo{}, fmt.Errorf("computing layer diffID: %w", err)
	}
	return layerInfo{digest: d.String(), diffID: id.String()}, nil
}

func compareLayers(ctx context.Context, a, b v1.Image, o *options) ([]LayerDiff, error) {
	la, err := a.Layers()
	if err != nil {
		return nil, fmt.Errorf("listing layers of image A: %w", err)
	}
	lb, err := b.Layers()
	if err != nil {
		return nil, fmt.Errorf("listing layers of image B: %w", err)
	}
	var out []LayerDiff
	for i := 0; i < max(len(la), len(lb)); i++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		var ia, ib layerInfo
		if i < len(la) {
			if ia, err = describeLayer(la[i]); err != nil {
				return nil, fmt.Errorf("image A layer %d: %w", i, err)
			}
		}
		if i < len(lb) {
			if ib, err = describeLayer(lb[i]); err != nil {
				return nil, fmt.Errorf("image B layer %d: %w", i, err)
			}
		}
		d := LayerDiff{Index: i, ADigest: ia.digest, BDigest: ib.digest, ADiffID: ia.diffID, BDiffID: ib.diffID}
		switch {
		case i >= len(lb):
			d.OnlyInA = true
			if err := listLayer(ctx, la[i], KindRemoved, &d, o); err != nil {
				return nil, fmt.Errorf("reading image A layer %d: %w", i, err)
			}
		case i >= len(la):
			d.OnlyInB = true
			if err := listLayer(ctx, lb[i], KindAdded, &d, o); err != nil {
				return nil, fmt.Errorf("reading image B layer %d: %w", i, err)
			}
		case ia.diffID == ib.diffID:
			if ia.digest == ib.digest {
				continue
			}
			d.Notes = append(d.Notes, "uncompressed contents are identical; only the compressed blobs differ (compression algorithm, level or implementation)")
		default:
			if err := diffLayerPair(ctx, la[i], lb[i], &d, o); err != nil {
				return nil, fmt.Errorf("comparing layer %d: %w", i, err)
			}
		}
		out = append(out, d)
	}
	return out, nil
}

// listLayer reports every entry of a layer that exists on one side only.
func listLayer(ctx context.Context, l v1.Layer, kind string, d *LayerDiff, o *options) error {
	idx, err := scanLayer(ctx, l)
	if err != nil {
		return err
	}
	paths := sortedKeys(idx.entries)
	for _, p := range paths {
		d.Files = append(d.Files, FileChange{Path: p, Kind: kind, Info: idx.entries[p].info()})
	}
	truncate(d, o)
	return nil
}

func truncate(d *LayerDiff, o *options) {
	if o.maxFiles > 0 && len(d.Files) > o.maxFiles {
		d.Truncated = len(d.Files) - o.maxFiles
		d.Files = d.Files[:o.maxFiles]
	}
}

func diffLayerPair(ctx context.Context, la, lb v1.Layer, d *LayerDiff, o *options) error {
	var ia, ib *tarIndex
	var errA, errB error
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); ia, errA = scanLayer(ctx, la) }()
	go func() { defer wg.Done(); ib, errB = scanLayer(ctx, lb) }()
	wg.Wait()
	if errA != nil {
		return fmt.Errorf("reading image A layer: %w", errA)
	}
	if errB != nil {
		return fmt.Errorf("reading image B layer: %w", errB)
	}

	paths := sortedKeys(ia.entries)
	for p := range ib.entries {
		if _, ok := ia.entries[p]; !ok {
			paths = append(paths, p)
		}
	}
	sort.Strings(paths)

	// needContent maps a path to its FileChange index for changed files whose
	// content differs and is small enough to show.
	needContent := map[string]int{}
	for _, p := range paths {
		ea, okA := ia.entries[p]
		eb, okB := ib.entries[p]
		switch {
		case !okA:
			d.Files = append(d.Files, FileChange{Path: p, Kind: KindAdded, Info: eb.info()})
		case !okB:
			d.Files = append(d.Files, FileChange{Path: p, Kind: KindRemoved, Info: ea.info()})
		default:
			fields := compareEntries(ea, eb)
			if len(fields) == 0 {
				continue
			}
			if ea.sum != eb.sum && o.maxContentBytes > 0 && ea.size <= o.maxContentBytes && eb.size <= o.maxContentBytes &&
				isRegular(ea.typ) && isRegular(eb.typ) && (o.maxFiles <= 0 || len(d.Files) < o.maxFiles) {
				needContent[p] = len(d.Files)
			}
			fc := FileChange{Path: p, Kind: KindChanged, Fields: fields}
			if r, ok := explainMode(ea.mode, eb.mode); ok {
				fc.Why = append(fc.Why, r)
			}
			d.Files = append(d.Files, fc)
		}
	}
	truncate(d, o)

	if pos, pa, pb, ok := orderDifference(ia, ib); ok {
		d.OrderDiffers = true
		d.Notes = append(d.Notes, fmt.Sprintf("tar entry order differs: at common entry #%d A has %s, B has %s", pos, pa, pb))
	}
	if len(d.Files) == 0 && !d.OrderDiffers {
		d.Notes = append(d.Notes, "entries and contents are identical; the tar streams differ only in encoding (headers, padding or trailer)")
	}

	if len(needContent) == 0 {
		return nil
	}
	want := make(map[string]bool, len(needContent))
	for p := range needContent {
		want[p] = true
	}
	var ca, cb map[string][]byte
	wg.Add(2)
	go func() { defer wg.Done(); ca, errA = readContents(ctx, la, want, o.maxContentBytes) }()
	go func() { defer wg.Done(); cb, errB = readContents(ctx, lb, want, o.maxContentBytes) }()
	wg.Wait()
	if errA != nil {
		return fmt.Errorf("re-reading image A layer: %w", errA)
	}
	if errB != nil {
		return fmt.Errorf("re-reading image B layer: %w", errB)
	}
	for p, i := range needContent {
		ba, okA := ca[p]
		bb, okB := cb[p]
		if !okA || !okB {
			continue
		}
		if isText(ba) && isText(bb) {
			d.Files[i].TextDiff = unifiedDiff(ba, bb, o.maxTextDiffLines)
			if r, ok := explainContent(ba, bb, o.hints); ok {
				d.Files[i].Why = append(d.Files[i].Why, r)
			}
		} else {
			d.Files[i].HexA, d.Files[i].HexB = hexExcerpts(ba, bb, defaultHexContextBytes)
		}
	}
	return nil
}

// ctxReader aborts reads once ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// forEachEntry streams the uncompressed tar of l and calls fn for each entry.
func forEachEntry(ctx context.Context, l v1.Layer, fn func(p string, h *tar.Header, r io.Reader) error) (err error) {
	rc, err := l.Uncompressed()
	if err != nil {
		return fmt.Errorf("opening uncompressed layer: %w", err)
	}
	defer func() {
		if cerr := rc.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("closing layer: %w", cerr)
		}
	}()
	tr := tar.NewReader(ctxReader{ctx: ctx, r: rc})
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading tar entry: %w", err)
		}
		if err := fn(cleanPath(h.Name), h, tr); err != nil {
			return err
		}
	}
}

func scanLayer(ctx context.Context, l v1.Layer) (*tarIndex, error) {
	idx := &tarIndex{entries: map[string]*entry{}}
	err := forEachEntry(ctx, l, func(p string, h *tar.Header, r io.Reader) error {
		hs := sha256.New()
		if _, err := io.Copy(hs, r); err != nil {
			return fmt.Errorf("reading content of %s: %w", p, err)
		}
		e := &entry{
			typ:      h.Typeflag,
			mode:     h.Mode,
			uid:      h.Uid,
			gid:      h.Gid,
			uname:    h.Uname,
			gname:    h.Gname,
			size:     h.Size,
			mtime:    h.ModTime,
			atime:    h.AccessTime,
			ctime:    h.ChangeTime,
			linkname: h.Linkname,
			devmajor: h.Devmajor,
			devminor: h.Devminor,
			format:   h.Format,
		}
		e.xattrs, e.pax = paxStrings(h.PAXRecords)
		hs.Sum(e.sum[:0])
		idx.entries[p] = e
		idx.order = append(idx.order, p)
		return nil
	})
	return idx, err
}

// readContents returns the contents of the wanted paths (last occurrence
// wins, as on extraction), skipping entries larger than limit.
func readContents(ctx context.Context, l v1.Layer, want map[string]bool, limit int64) (map[string][]byte, error) {
	out := map[string][]byte{}
	err := forEachEntry(ctx, l, func(p string, h *tar.Header, r io.Reader) error {
		if !want[p] || h.Size > limit {
			delete(out, p)
			return nil
		}
		b, err := io.ReadAll(io.LimitReader(r, limit))
		if err != nil {
			return fmt.Errorf("reading content of %s: %w", p, err)
		}
		out[p] = b
		return nil
	})
	return out, err
}

// cleanPath normalises a tar entry name: leading "./" and "/" are stripped and
// the result is cleaned; the root directory is ".".
func cleanPath(name string) string {
	for {
		switch {
		case strings.HasPrefix(name, "./"):
			name = name[2:]
		case strings.HasPrefix(name, "/"):
			name = name[1:]
		default:
			if name == "" {
				return "."
			}
			return path.Clean(name)
		}
	}
}

func sortedKeys(m map[string]*entry) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// standardPAXKeys are PAX records mirrored in tar.Header fields that are
// compared individually.
var standardPAXKeys = map[string]bool{
	"path": true, "linkpath": true, "size": true, "uid": true, "gid": true,
	"uname": true, "gname": true, "mtime": true, "atime": true, "ctime": true,
}

// paxStrings renders the xattr PAX records and the remaining non-standard PAX
// records as sorted `key="value"` lists.
func paxStrings(recs map[string]string) (xattrs, other string) {
	if len(recs) == 0 {
		return "", ""
	}
	keys := make([]string, 0, len(recs))
	for k := range recs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var xs, os []string
	for _, k := range keys {
		switch {
		case strings.HasPrefix(k, "SCHILY.xattr."):
			xs = append(xs, strings.TrimPrefix(k, "SCHILY.xattr.")+"="+strconv.Quote(recs[k]))
		case !standardPAXKeys[k]:
			os = append(os, k+"="+strconv.Quote(recs[k]))
		}
	}
	return strings.Join(xs, " "), strings.Join(os, " ")
}

func compareEntries(a, b *entry) []FieldChange {
	var fs []FieldChange
	add := func(name, va, vb string) {
		if va != vb {
			fs = append(fs, FieldChange{Name: name, A: va, B: vb})
		}
	}
	add(FieldType, typeName(a.typ), typeName(b.typ))
	add(FieldMode, fmtMode(a.mode), fmtMode(b.mode))
	add(FieldUID, strconv.Itoa(a.uid), strconv.Itoa(b.uid))
	add(FieldGID, strconv.Itoa(a.gid), strconv.Itoa(b.gid))
	add(FieldUname, a.uname, b.uname)
	add(FieldGname, a.gname, b.gname)
	add(FieldSize, strconv.FormatInt(a.size, 10), strconv.FormatInt(b.size, 10))
	add(FieldMtime, fmtTime(a.mtime), fmtTime(b.mtime))
	add(FieldAtime, fmtTime(a.atime), fmtTime(b.atime))
	add(FieldCtime, fmtTime(a.ctime), fmtTime(b.ctime))
	add(FieldLinkname, a.linkname, b.linkname)
	add(FieldDevice, fmtDevice(a), fmtDevice(b))
	add(FieldXattrs, a.xattrs, b.xattrs)
	add(FieldPAX, a.pax, b.pax)
	// The tar header format (USTAR, PAX, GNU) usually follows from the
	// other attributes (e.g. xattrs need PAX); report it only when no other
	// header attribute explains the difference.
	if len(fs) == 0 {
		add(FieldFormat, a.format.String(), b.format.String())
	}
	add(FieldContent, "sha256:"+hex.EncodeToString(a.sum[:]), "sha256:"+hex.EncodeToString(b.sum[:]))
	return fs
}

func (e *entry) info() string {
	var b strings.Builder
	b.WriteString(typeName(e.typ))
	fmt.Fprintf(&b, " %s %d:%d", fmtMode(e.mode), e.uid, e.gid)
	if isRegular(e.typ) {
		fmt.Fprintf(&b, " %d bytes", e.size)
	}
	if e.linkname != "" {
		fmt.Fprintf(&b, " -> %s", e.linkname)
	}
	return b.String()
}

func isRegular(t byte) bool { return t == tar.TypeReg || t == tar.TypeRegA }

func typeName(t byte) string {
	switch t {
	case tar.TypeReg, tar.TypeRegA:
		return "file"
	case tar.TypeDir:
		return "dir"
	case tar.TypeSymlink:
		return "symlink"
	case tar.TypeLink:
		return "hardlink"
	case tar.TypeChar:
		return "char"
	case tar.TypeBlock:
		return "block"
	case tar.TypeFifo:
		return "fifo"
	case tar.TypeCont:
		return "contiguous"
	case tar.TypeGNUSparse:
		return "sparse"
	default:
		return fmt.Sprintf("type(%q)", t)
	}
}

func fmtMode(m int64) string { return fmt.Sprintf("%04o", m) }

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	if ns := t.Nanosecond(); ns != 0 {
		return fmt.Sprintf("%d.%09d", t.Unix(), ns)
	}
	return strconv.FormatInt(t.Unix(), 10)
}

func fmtDevice(e *entry) string {
	if e.typ != tar.TypeChar && e.typ != tar.TypeBlock {
		return ""
	}
	return fmt.Sprintf("%d,%d", e.devmajor, e.devminor)
}

// orderDifference compares the archive order of the paths present in both
// tars and returns the first differing position (1-based) and the paths (or
// "(end)") found there.
func orderDifference(a, b *tarIndex) (int, string, string, bool) {
	filter := func(order []string, other map[string]*entry) []string {
		var out []string
		for _, p := range order {
			if _, ok := other[p]; ok {
				out = append(out, p)
			}
		}
		return out
	}
	oa := filter(a.order, b.entries)
	ob := filter(b.order, a.entries)
	for i := 0; i < max(len(oa), len(ob)); i++ {
		pa, pb := "(end)", "(end)"
		if i < len(oa) {
			pa = strconv.Quote(oa[i])
		}
		if i < len(ob) {
			pb = strconv.Quote(ob[i])
		}
		if pa != pb {
			return i + 1, pa, pb, true
		}
	}
	return 0, "", "", false
}
