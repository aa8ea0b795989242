package rebuild

import (
	"fmt"
	"io"
	"strings"

	"github.com/twinforge/twinforge/builder"
)

// WriteWarnings writes what only the pinned variations changed, one
// "warning: " line each.
func WriteWarnings(w io.Writer, warnings []Warning) {
	for _, warn := range warnings {
		fmt.Fprintf(w, "warning: %s\n", warn)
	}
}

// WriteSides writes each side's time and cache on one line, after a
// warning for every side whose cache could not be used.
func (r *Result) WriteSides(w io.Writer) {
	type side struct {
		name string
		r    *builder.Result
	}
	sides := []side{{"build", r.Build}, {"rebuild", r.Rebuild}}
	if r.Strict != nil && r.Strict != r.Rebuild {
		sides = append(sides, side{"strict rebuild", r.Strict})
	}
	var parts []string
	for _, s := range sides {
		if s.r == nil {
			continue
		}
		parts = append(parts, fmt.Sprintf("%s %.1fs (%s, %d of %d steps cached)", s.name, s.r.Duration.Seconds(), s.r.Builder.CacheState(), s.r.CachedSteps, s.r.Steps))
		if c := s.r.Builder.Cache; c != nil && c.Reset != "" {
			fmt.Fprintf(w, "warning: the %s's cache was not used, that side ran cold: %s\n", s.name, c.Reset)
		}
	}
	fmt.Fprintln(w, strings.Join(parts, " · "))
}
