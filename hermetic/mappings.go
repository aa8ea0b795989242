package hermetic

import (
	"fmt"
	"strings"
)

// ParseImageMappings parses NAME=oci-layout:PATH[:TAG] values, as
// `twinforge lock --image` and `twinforge rebuild --image` take them, into
// Request.Images. A value is named in its error as --image.
func ParseImageMappings(values []string) (map[string]string, error) {
	if len(values) == 0 {
		return nil, nil
	}
	out := map[string]string{}
	for _, m := range values {
		name, loc, ok := strings.Cut(m, "=")
		if !ok || name == "" || !strings.HasPrefix(loc, "oci-layout:") || len(loc) == len("oci-layout:") {
			return nil, fmt.Errorf("--image %q: use NAME=oci-layout:PATH[:TAG], e.g. example.test/base:1=oci-layout:examples/base/out", m)
		}
		if prev, dup := out[name]; dup && prev != loc {
			return nil, fmt.Errorf("--image %s is given twice", name)
		}
		out[name] = loc
	}
	return out, nil
}
