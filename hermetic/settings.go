package hermetic

import (
	"fmt"
	"strconv"
)

// ParseSourceDateEpoch parses the SOURCE_DATE_EPOCH a person gives: value,
// or when it is empty env (the variable's value), as reproducible-builds.org
// defines it. Neither given is nil: the lock then takes HEAD's commit time.
func ParseSourceDateEpoch(value, env string) (*int64, error) {
	if value == "" {
		value = env
	}
	if value == "" {
		return nil, nil
	}
	n, err := strconv.ParseInt(value, 10, 64)
	if err != nil || n < 0 {
		return nil, fmt.Errorf("SOURCE_DATE_EPOCH %q: use a non-negative number of seconds since 1970", value)
	}
	return &n, nil
}

// Summary says what Write wrote to path, as `twinforge lock` prints it:
// what the lock pins and, with verified modules, the checksum database
// tree they were proven in.
func (l *Lock) Summary(path string) string {
	s := fmt.Sprintf("wrote %s (%d images, %d URLs, %d git sources, %d Go modules, SOURCE_DATE_EPOCH=%d)",
		path, len(l.Images), len(l.URLs), len(l.Git), len(l.GoModules), l.SourceDateEpoch)
	if l.GoSumDB != nil {
		s += fmt.Sprintf("\nGo modules proven in %s, tree %d", l.GoSumDB.Name, l.GoSumDB.TreeSize)
	}
	return s
}
