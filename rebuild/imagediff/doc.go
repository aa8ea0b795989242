// Package imagediff compares two OCI images and explains, diffoscope-style,
// why their digests differ.
//
// [Compare] walks the image manifest and config JSON (reporting every changed
// JSON leaf as a [JSONChange] with a JSONPath-like path such as
// "$.config.Env[2]") and pairs layers by index. For every pair of layers whose
// diffIDs differ it streams both uncompressed tar archives, indexes the
// entries by cleaned path and reports added, removed and changed files
// (header fields and content sha256). For files whose content differs and
// whose size is within the configured limit it attaches a short unified diff
// (text) or hex excerpts around the first differing byte (binary).
//
// Memory stays bounded for large layers: the first pass keeps only headers and
// content hashes; a second pass re-reads both layers and keeps the bytes of
// just those (reported, size-limited) files whose content differs.
//
// Where a difference has a recognisable shape, its [FileChange] says why
// ([Reason]): a mode that differs only in the group and other bits names
// the umask, a time of day or Unix time in the content names the clock, a
// time zone name or offset names the time zone, and a value of a setting
// the caller knows differed ([WithHints]: a CPU count, a hostname) names
// that setting.
//
// A difference in the order of tar entries (same entries, different order) is
// reported through [LayerDiff.OrderDiffers] together with a note naming the
// first differing position. Whiteout files (".wh.*") are treated as ordinary
// files.
//
// [Load] resolves an OCI image layout directory ("DIR", "DIR@sha256:…",
// "oci:DIR") or a registry reference to a [v1.Image]. [CheckComparable]
// reports images built for different platforms, which are not meaningfully
// comparable.
//
// The package never prints; callers render a [Report] as text with
// [Report.WriteText] or as JSON with encoding/json.
package imagediff
