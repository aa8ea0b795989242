package attest

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

func TestSignSettingsMethod(t *testing.T) {
	key := filepath.Join(t.TempDir(), "cosign.key")
	if err := os.WriteFile(key, []byte("k"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		sign, method, keyPath, err string
	}{
		{sign: "keyless", method: "keyless"},
		{sign: "none", method: "none"},
		{sign: "key=" + key, method: "key", keyPath: key},
		{sign: "key=nope", err: "--sign key=nope: stat nope: no such file or directory"},
		{sign: "boom", err: `--sign "boom": use keyless, key=FILE or none`},
	} {
		method, keyPath, err := SignSettings{Sign: tc.sign}.Method()
		if method != tc.method || keyPath != tc.keyPath || (err == nil) != (tc.err == "") || err != nil && err.Error() != tc.err {
			t.Errorf("Method of %q = %q, %q, %v; want %q, %q, %q", tc.sign, method, keyPath, err, tc.method, tc.keyPath, tc.err)
		}
	}
	if s, err := (SignSettings{Sign: "none"}).NewSigner(context.Background()); s != nil || err != nil {
		t.Errorf("NewSigner of none = %v, %v; want nil, nil", s, err)
	}
}
