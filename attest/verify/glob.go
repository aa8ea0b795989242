package verify

import (
	"errors"
	"regexp"
	"strings"
)

// Glob compiles a glob pattern into a regular expression that matches
// whole values only. It is the one pattern syntax of twinforge: policy
// sourceRepositories and builderIDs (policy.md) and the namespace and image
// patterns of admission configurations (admission/config.md) use it.
//
//   - "*" matches any run of characters except "/", "**" any run including
//     "/", and "?" one character except "/";
//   - "[...]" matches one character of a class, "[!...]" one character not
//     in it; ranges are written a-z;
//   - every other character matches itself. There is no escape character:
//     a backslash is an ordinary character, inside a class too ("[\]"
//     matches a backslash), since none of the values matched (URLs,
//     repository names, namespaces) ever needs one.
//
// An empty pattern, an unterminated "[" and an empty class ("[]", "[!]")
// are errors.
func Glob(pattern string) (*regexp.Regexp, error) {
	if pattern == "" {
		return nil, errors.New("empty pattern")
	}
	var b strings.Builder
	b.WriteString("^")
	for i := 0; i < len(pattern); i++ {
		switch c := pattern[i]; c {
		case '*':
			if i+1 < len(pattern) && pattern[i+1] == '*' {
				b.WriteString(".*")
				i++
			} else {
				b.WriteString("[^/]*")
			}
		case '?':
			b.WriteString("[^/]")
		case '[':
			j := strings.IndexByte(pattern[i:], ']')
			if j < 0 {
				return nil, errors.New("unterminated [")
			}
			class := pattern[i+1 : i+j]
			negate := strings.HasPrefix(class, "!")
			class = strings.TrimPrefix(class, "!")
			if class == "" {
				return nil, errors.New("empty character class")
			}
			b.WriteString("[")
			if negate {
				b.WriteString("^")
			}
			// Inside a regexp class only "\", "[" and "^" (first) are
			// special; a glob class has no escapes, so quote them.
			for k := 0; k < len(class); k++ {
				switch ch := class[k]; {
				case ch == '\\' || ch == '[' || (ch == '^' && k == 0):
					b.WriteByte('\\')
					b.WriteByte(ch)
				default:
					b.WriteByte(ch)
				}
			}
			b.WriteString("]")
			i += j
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	b.WriteString("$")
	return regexp.Compile(b.String())
}
