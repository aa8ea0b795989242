package imagediff

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/aymanbagabas/go-udiff"
)

// Causes a [Reason] can name: the build setting a difference most likely
// comes from.
const (
	// CauseUmask: a mode that differs only in its group and other bits,
	// as two umasks give.
	CauseUmask = "umask"
	// CauseClock: content that records the time of day or a Unix time.
	CauseClock = "clock"
	// CauseTimeZone: content whose differing words are time zone names or
	// offsets (UTC against JST, +0000 against +0900).
	CauseTimeZone = "tz"
)

// Reason explains why one attribute of a file differs, where the
// difference has a recognisable shape.
type Reason struct {
	// Field is the attribute explained: FieldMode or FieldContent.
	Field string `json:"field"`
	// Cause names the build setting: CauseUmask, CauseClock,
	// CauseTimeZone, or the Name of a [Hint].
	Cause string `json:"cause"`
	// Text says it for humans.
	Text string `json:"text"`
}

// Hint tells [Compare] about a setting that differed between the builds of
// A and B, such as the CPU count or the hostname their steps saw: content
// in which A's value became B's is explained by it.
type Hint struct {
	// Cause is what a matching difference is attributed to, e.g. "cpuset".
	Cause string
	// A and B are the setting's values as a step would print them, e.g.
	// "2" and "1" for the CPU count.
	A, B string
	// Text explains a match, e.g. "the CPU count the step saw (the
	// rebuild runs on cpuset 0)".
	Text string
}

// WithHints explains content differences between the values of settings
// known to have differed. By default only the umask, clock and time zone
// shapes are recognised.
func WithHints(h ...Hint) Option {
	return func(o *options) { o.hints = append(o.hints, h...) }
}

// explainMode names the umask when two modes differ only in the group and
// other permission bits.
func explainMode(a, b int64) (Reason, bool) {
	x := (a ^ b) & 0o7777
	if x == 0 || x&^0o077 != 0 {
		return Reason{}, false
	}
	return Reason{Field: FieldMode, Cause: CauseUmask, Text: fmt.Sprintf(
		"only the group and other permission bits differ (%s → %s): the mode depends on the umask the step ran with", fmtMode(a), fmtMode(b))}, true
}

var (
	timeOfDay = regexp.MustCompile(`\b([01]?\d|2[0-3]):[0-5]\d(:[0-5]\d)?\b`)
	unixTime  = regexp.MustCompile(`^1[0-9]{9}([^0-9].*)?$`)
	// A zone as date and strftime print it: an abbreviation, an offset,
	// or, without zoneinfo, the TZ value or its first part ("Asia").
	zoneName = regexp.MustCompile(`^([A-Z][A-Za-z]{1,5}|[+-][0-9]{2}:?[0-9]{2}|[A-Z][A-Za-z]+/[A-Za-z_]+)$`)
	utcName  = regexp.MustCompile(`^(UTC|GMT|Z|UCT|UTC0|[+-]00:?00)$`)
)

// explainContent looks at the lines that differ between two texts and
// names the clock, the time zone or a hinted setting when the differing
// words have that shape. A time zone is UTC against another zone: BuildKit
// runs steps in UTC, so one side of a zone difference is always that. The
// time zone is tried first: a clock read in
// another zone shows another time of day as well.
func explainContent(a, b []byte, hints []Hint) (Reason, bool) {
	ra, rb := changedLines(a, b)
	wa, wb := strings.Fields(ra), strings.Fields(rb)
	var pairs [][2]string
	if len(wa) == len(wb) {
		for i := range wa {
			if wa[i] != wb[i] {
				pairs = append(pairs, [2]string{wa[i], wb[i]})
			}
		}
	}
	for _, p := range pairs {
		if isZonePair(p) && !allHinted(pairs, hints) {
			return Reason{Field: FieldContent, Cause: CauseTimeZone, Text: fmt.Sprintf(
				"the content names a time zone (%s → %s): it depends on the TZ the step ran with", p[0], p[1])}, true
		}
	}
	if len(pairs) > 0 {
		for _, h := range hints {
			if allMatch(pairs, h) {
				return Reason{Field: FieldContent, Cause: h.Cause, Text: fmt.Sprintf("%s → %s: %s", h.A, h.B, h.Text)}, true
			}
		}
	}
	switch {
	case timeOfDay.MatchString(ra) && timeOfDay.MatchString(rb):
		return Reason{Field: FieldContent, Cause: CauseClock, Text: fmt.Sprintf(
			"the content records a time of day (%s → %s): it depends on the clock when the step ran", timeOfDay.FindString(ra), timeOfDay.FindString(rb))}, true
	case len(pairs) > 0 && allUnixTimes(pairs):
		return Reason{Field: FieldContent, Cause: CauseClock, Text: fmt.Sprintf(
			"the content records a Unix time (%s → %s): it depends on the clock when the step ran", pairs[0][0], pairs[0][1])}, true
	}
	return Reason{}, false
}

// isZonePair is UTC against another zone, either way round.
func isZonePair(p [2]string) bool {
	return (utcName.MatchString(p[0]) && zoneName.MatchString(p[1]) && !utcName.MatchString(p[1])) ||
		(utcName.MatchString(p[1]) && zoneName.MatchString(p[0]) && !utcName.MatchString(p[0]))
}

func allMatch(pairs [][2]string, h Hint) bool {
	for _, p := range pairs {
		if p[0] != h.A || p[1] != h.B {
			return false
		}
	}
	return true
}

func allHinted(pairs [][2]string, hints []Hint) bool {
	for _, h := range hints {
		if allMatch(pairs, h) {
			return true
		}
	}
	return false
}

func allUnixTimes(pairs [][2]string) bool {
	for _, p := range pairs {
		if !unixTime.MatchString(p[0]) || !unixTime.MatchString(p[1]) {
			return false
		}
		x, _ := strconv.ParseFloat(leadingNumber(p[0]), 64)
		y, _ := strconv.ParseFloat(leadingNumber(p[1]), 64)
		if x == y {
			return false
		}
	}
	return true
}

// changedLines returns the lines only in a and the lines only in b, each
// joined by newlines.
func changedLines(a, b []byte) (string, string) {
	var ra, rb strings.Builder
	for _, h := range lineHunks(a, b) {
		for _, l := range h.Lines {
			switch l.Kind {
			case udiff.Delete:
				ra.WriteString(l.Content)
				ra.WriteByte('\n')
			case udiff.Insert:
				rb.WriteString(l.Content)
				rb.WriteByte('\n')
			}
		}
	}
	return ra.String(), rb.String()
}

// leadingNumber is the decimal number a word starts with ("1764078001.5"
// of "1764078001.5s"; a comma is read as the decimal point).
func leadingNumber(w string) string {
	w = strings.Replace(w, ",", ".", 1)
	end := 0
	for end < len(w) && (w[end] >= '0' && w[end] <= '9' || w[end] == '.') {
		end++
	}
	return strings.TrimSuffix(w[:end], ".")
}
