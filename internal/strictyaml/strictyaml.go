// Package strictyaml decodes twinforge's configuration files (policies,
// admission configurations): YAML, or JSON, which is YAML, holding exactly
// one document, with every field known to the type decoded into.
package strictyaml

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"go.yaml.in/yaml/v3"
)

// ErrEmpty is returned for input that holds no YAML document.
var ErrEmpty = errors.New("empty document")

// Decode decodes the one YAML document in data into v. A field v's type
// does not know is an error naming its line, as is a second document;
// errors lose go-yaml's "yaml: " prefix, so callers can add their own
// context.
func Decode(data []byte, v any) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return ErrEmpty
		}
		return errors.New(strings.TrimPrefix(err.Error(), "yaml: "))
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return fmt.Errorf("line %d: the file holds more than one YAML document", extra.Line)
	}
	return nil
}
