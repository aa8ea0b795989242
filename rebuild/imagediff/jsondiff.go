package imagediff

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
)

// diffJSON decodes two JSON documents and returns their leaf differences in
// walk order: object keys sorted lexically, array elements by index.
//
// JSON patch libraries (RFC 6902) compare values, so 1.0 and 1 are equal to
// them; a digest is of bytes, so here numbers compare as written.
func diffJSON(a, b []byte) ([]JSONChange, error) {
	va, err := decodeJSON(a)
	if err != nil {
		return nil, fmt.Errorf("decoding A: %w", err)
	}
	vb, err := decodeJSON(b)
	if err != nil {
		return nil, fmt.Errorf("decoding B: %w", err)
	}
	var out []JSONChange
	if err := walkJSON("$", va, vb, true, true, &out); err != nil {
		return nil, err
	}
	return out, nil
}

func decodeJSON(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return v, nil
}

func walkJSON(path string, a, b any, hasA, hasB bool, out *[]JSONChange) error {
	if hasA && hasB {
		switch ta := a.(type) {
		case map[string]any:
			if tb, ok := b.(map[string]any); ok {
				keys := make([]string, 0, len(ta)+len(tb))
				for k := range ta {
					keys = append(keys, k)
				}
				for k := range tb {
					if _, ok := ta[k]; !ok {
						keys = append(keys, k)
					}
				}
				sort.Strings(keys)
				for _, k := range keys {
					va, okA := ta[k]
					vb, okB := tb[k]
					if err := walkJSON(path+jsonKey(k), va, vb, okA, okB, out); err != nil {
						return err
					}
				}
				return nil
			}
		case []any:
			if tb, ok := b.([]any); ok {
				n := max(len(ta), len(tb))
				for i := 0; i < n; i++ {
					var va, vb any
					if i < len(ta) {
						va = ta[i]
					}
					if i < len(tb) {
						vb = tb[i]
					}
					if err := walkJSON(path+"["+strconv.Itoa(i)+"]", va, vb, i < len(ta), i < len(tb), out); err != nil {
						return err
					}
				}
				return nil
			}
		}
	}
	var c JSONChange
	c.Path = path
	var err error
	if hasA {
		if c.A, err = marshalJSON(a); err != nil {
			return err
		}
	}
	if hasB {
		if c.B, err = marshalJSON(b); err != nil {
			return err
		}
	}
	if hasA && hasB && bytes.Equal(c.A, c.B) {
		return nil
	}
	*out = append(*out, c)
	return nil
}

func marshalJSON(v any) (json.RawMessage, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("encoding JSON value: %w", err)
	}
	return json.RawMessage(bytes.TrimRight(buf.Bytes(), "\n")), nil
}

// jsonKey renders an object member access: ".key" for identifier-like keys,
// `["key"]` otherwise.
func jsonKey(k string) string {
	ident := k != ""
	for i, r := range k {
		if !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || (i > 0 && r >= '0' && r <= '9')) {
			ident = false
			break
		}
	}
	if ident {
		return "." + k
	}
	q, _ := json.Marshal(k)
	return "[" + string(q) + "]"
}
