package imagediff

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Default limits used by [Compare].
const (
	DefaultMaxFiles          = 200
	DefaultMaxTextDiffLines  = 40
	DefaultMaxContentBytes   = 1 << 20
	defaultHexContextBytes   = 64
	defaultMaxJSONValueChars = 160
)

// Report describes how two images differ. A zero-change report for images with
// the same digest means the images are identical (see [Report.Equal]).
type Report struct {
	A ImageSummary `json:"a"`
	B ImageSummary `json:"b"`
	// Manifest lists differences between the image manifests.
	Manifest []JSONChange `json:"manifest,omitempty"`
	// Config lists differences between the image config files.
	Config []JSONChange `json:"config,omitempty"`
	// Layers lists the layer pairs (by index) that differ, in index order.
	Layers []LayerDiff `json:"layers,omitempty"`
	// Notes holds remarks that do not fit elsewhere, e.g. a manifest whose
	// bytes differ although its decoded JSON is identical.
	Notes []string `json:"notes,omitempty"`
}

// ImageSummary identifies one of the compared images.
type ImageSummary struct {
	Digest    string `json:"digest"`
	MediaType string `json:"mediaType,omitempty"`
	// Platform is "os/arch[/variant]" from the image config.
	Platform string `json:"platform,omitempty"`
}

// JSONChange is one differing JSON leaf. Path is JSONPath-like ("$.created",
// "$.config.Env[2]", `$.annotations["org.opencontainers.image.created"]`).
// A is absent (nil) when the value was added in B; B is absent when the value
// was removed in B.
type JSONChange struct {
	Path string          `json:"path"`
	A    json.RawMessage `json:"a,omitempty"`
	B    json.RawMessage `json:"b,omitempty"`
}

// LayerDiff describes a differing pair of layers at the same index.
type LayerDiff struct {
	Index int `json:"index"`
	// ADigest and BDigest are the (compressed) layer blob digests.
	ADigest string `json:"aDigest,omitempty"`
	BDigest string `json:"bDigest,omitempty"`
	// ADiffID and BDiffID are the digests of the uncompressed tar streams.
	ADiffID string `json:"aDiffID,omitempty"`
	BDiffID string `json:"bDiffID,omitempty"`
	// OnlyInA / OnlyInB are set when the images have different layer counts
	// and this index exists on one side only. Its files are then listed as
	// "removed" (OnlyInA) or "added" (OnlyInB).
	OnlyInA bool `json:"onlyInA,omitempty"`
	OnlyInB bool `json:"onlyInB,omitempty"`
	// OrderDiffers is set when entries present in both tars appear in a
	// different order; Notes names the first differing position.
	OrderDiffers bool `json:"orderDiffers,omitempty"`
	// Files lists per-path differences, sorted by path, at most MaxFiles.
	Files []FileChange `json:"files,omitempty"`
	// Truncated is the number of file changes omitted from Files.
	Truncated int `json:"truncated,omitempty"`
	// Notes holds layer-level remarks (entry order, compression-only
	// differences, tar encoding differences).
	Notes []string `json:"notes,omitempty"`
}

// File change kinds.
const (
	KindAdded   = "added"
	KindRemoved = "removed"
	KindChanged = "changed"
)

// FileChange is a difference for one path inside a layer.
type FileChange struct {
	Path string `json:"path"`
	// Kind is "added", "removed" or "changed".
	Kind string `json:"kind"`
	// Info summarises the entry of an added or removed path
	// (type, mode, owner, size, link target).
	Info string `json:"info,omitempty"`
	// Fields lists the differing attributes of a changed path.
	Fields []FieldChange `json:"fields,omitempty"`
	// TextDiff is a short unified diff when both contents are text.
	TextDiff string `json:"textDiff,omitempty"`
	// HexA and HexB are hex.Dump-style excerpts (absolute offsets) around
	// the first differing byte when the contents are binary.
	HexA string `json:"hexA,omitempty"`
	HexB string `json:"hexB,omitempty"`
	// Why explains differing attributes whose shape names their cause: a
	// mode differing only in group and other bits (the umask), a time of
	// day (the clock), a time zone, or a setting given by [WithHints].
	Why []Reason `json:"why,omitempty"`
}

// Field names used in [FieldChange.Name]. Besides the usual header fields,
// "atime"/"ctime" (GNU/PAX times), "device" (major,minor of device nodes),
// "pax" (PAX records other than xattrs and standard fields) and "format"
// (USTAR/PAX/GNU; reported only when no other header attribute differs) are
// compared because they change the layer bytes too.
const (
	FieldType     = "type"
	FieldMode     = "mode"
	FieldUID      = "uid"
	FieldGID      = "gid"
	FieldUname    = "uname"
	FieldGname    = "gname"
	FieldSize     = "size"
	FieldMtime    = "mtime"
	FieldAtime    = "atime"
	FieldCtime    = "ctime"
	FieldLinkname = "linkname"
	FieldDevice   = "device"
	FieldXattrs   = "xattrs"
	FieldPAX      = "pax"
	FieldFormat   = "format"
	FieldContent  = "content"
)

// FieldChange is one differing attribute of a tar entry, rendered as strings
// (mode in octal, times as unix seconds[.nanoseconds], content as sha256).
type FieldChange struct {
	Name string `json:"name"`
	A    string `json:"a"`
	B    string `json:"b"`
}

// Equal reports whether the two images are identical: same digest and no
// recorded differences.
func (r *Report) Equal() bool {
	return r.A.Digest == r.B.Digest && len(r.Manifest) == 0 && len(r.Config) == 0 &&
		len(r.Layers) == 0 && len(r.Notes) == 0
}

// Option configures [Compare].
type Option func(*options)

type options struct {
	maxFiles         int
	maxTextDiffLines int
	maxContentBytes  int64
	hints            []Hint
}

// WithMaxFiles limits the number of file changes reported per layer
// (default 200). n <= 0 means no limit.
func WithMaxFiles(n int) Option { return func(o *options) { o.maxFiles = n } }

// WithMaxTextDiffLines limits the number of lines of each unified diff
// (default 40). n <= 0 means no limit.
func WithMaxTextDiffLines(n int) Option { return func(o *options) { o.maxTextDiffLines = n } }

// WithMaxContentBytes sets the largest file size whose content is read to
// produce a text diff or hex excerpt (default 1 MiB). Larger files only get a
// content hash change. n <= 0 disables content excerpts entirely.
func WithMaxContentBytes(n int64) Option { return func(o *options) { o.maxContentBytes = n } }

// Compare compares two images and returns what differs. Identical images give
// a Report with Equal()==true. Layers are read through Uncompressed(), up to
// twice per differing layer.
func Compare(ctx context.Context, a, b v1.Image, opts ...Option) (*Report, error) {
	o := options{
		maxFiles:         DefaultMaxFiles,
		maxTextDiffLines: DefaultMaxTextDiffLines,
		maxContentBytes:  DefaultMaxContentBytes,
	}
	for _, opt := range opts {
		opt(&o)
	}
	sa, err := summarize(a)
	if err != nil {
		return nil, fmt.Errorf("reading image A: %w", err)
	}
	sb, err := summarize(b)
	if err != nil {
		return nil, fmt.Errorf("reading image B: %w", err)
	}
	r := &Report{A: sa, B: sb}
	if sa.Digest == sb.Digest {
		return r, nil
	}

	rawA, err := a.RawManifest()
	if err != nil {
		return nil, fmt.Errorf("reading manifest of image A: %w", err)
	}
	rawB, err := b.RawManifest()
	if err != nil {
		return nil, fmt.Errorf("reading manifest of image B: %w", err)
	}
	if r.Manifest, err = diffJSON(rawA, rawB); err != nil {
		return nil, fmt.Errorf("comparing manifests: %w", err)
	}
	if len(r.Manifest) == 0 && !bytes.Equal(rawA, rawB) {
		r.Notes = append(r.Notes, "manifests decode to the same JSON but their bytes differ (whitespace or key order)")
	}

	cfgA, err := a.RawConfigFile()
	if err != nil {
		return nil, fmt.Errorf("reading config of image A: %w", err)
	}
	cfgB, err := b.RawConfigFile()
	if err != nil {
		return nil, fmt.Errorf("reading config of image B: %w", err)
	}
	if r.Config, err = diffJSON(cfgA, cfgB); err != nil {
		return nil, fmt.Errorf("comparing configs: %w", err)
	}
	if len(r.Config) == 0 && !bytes.Equal(cfgA, cfgB) {
		r.Notes = append(r.Notes, "configs decode to the same JSON but their bytes differ (whitespace or key order)")
	}

	if r.Layers, err = compareLayers(ctx, a, b, &o); err != nil {
		return nil, err
	}
	return r, nil
}

func summarize(img v1.Image) (ImageSummary, error) {
	d, err := img.Digest()
	if err != nil {
		return ImageSummary{}, fmt.Errorf("computing digest: %w", err)
	}
	mt, err := img.MediaType()
	if err != nil {
		return ImageSummary{}, fmt.Errorf("reading media type: %w", err)
	}
	p, err := platformOf(img)
	if err != nil {
		return ImageSummary{}, err
	}
	return ImageSummary{Digest: d.String(), MediaType: string(mt), Platform: p}, nil
}

func platformOf(img v1.Image) (string, error) {
	cf, err := img.ConfigFile()
	if err != nil {
		return "", fmt.Errorf("reading config file: %w", err)
	}
	if cf == nil || (cf.OS == "" && cf.Architecture == "") {
		return "unknown", nil
	}
	p := cf.OS + "/" + cf.Architecture
	if cf.Variant != "" {
		p += "/" + cf.Variant
	}
	return p, nil
}
