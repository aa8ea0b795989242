// Package keyvalue parses repeated KEY=VALUE settings (--build-arg,
// --node-selector) the one way every twinforge command does.
package keyvalue

import (
	"fmt"
	"os"
	"strings"
)

// Parse parses the values of the repeated setting flag (named without
// dashes). A KEY without "=" takes its value from the environment, as
// docker build does. No values give a nil map.
func Parse(flag string, values []string) (map[string]string, error) {
	if len(values) == 0 {
		return nil, nil
	}
	out := map[string]string{}
	for _, kv := range values {
		k, v, ok := strings.Cut(kv, "=")
		if k == "" {
			return nil, fmt.Errorf("--%s %q: use KEY=VALUE", flag, kv)
		}
		if !ok {
			env, set := os.LookupEnv(k)
			if !set {
				return nil, fmt.Errorf("--%s %q: no value given and %s is not set in the environment", flag, kv, k)
			}
			v = env
		}
		out[k] = v
	}
	return out, nil
}
