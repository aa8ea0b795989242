package admission

import (
	"bufio"
	"bytes"
	"fmt"
	"regexp"
	"strings"
)

var sha256Digest = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

// revocations is a set of revoked image digests.
type revocations map[string]struct{}

// ParseRevocations checks a revocation list: one image manifest digest
// (sha256:<64 hex digits>) per line; blank lines and text after "#" are
// ignored. It returns how many digests the list holds.
func ParseRevocations(data []byte) (int, error) {
	r, err := parseRevocations(data)
	return len(r), err
}

func parseRevocations(data []byte) (revocations, error) {
	out := revocations{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if !sha256Digest.MatchString(line) {
			return nil, fmt.Errorf("%w: revocation list line %d: %q is not a digest (sha256:<64 lowercase hex digits>)", ErrInvalidConfig, n, line)
		}
		out[line] = struct{}{}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: revocation list: %v", ErrInvalidConfig, err)
	}
	return out, nil
}

func (r revocations) has(digest string) bool {
	_, ok := r[digest]
	return ok
}
