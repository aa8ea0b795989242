package jwtclaims

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

func TestUnverified(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, nil)
	if err != nil {
		t.Fatal(err)
	}
	signed, err := jwt.Signed(sig).Claims(map[string]any{"iss": "https://issuer.test", "email": "me@example.test"}).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	enc := base64.RawURLEncoding.EncodeToString
	hs256 := enc([]byte(`{"alg":"HS256"}`))
	es256 := enc([]byte(`{"alg":"ES256"}`))
	tests := []struct {
		name, token string
		want        error
	}{
		{"signed", "  " + signed + "\n", nil},
		{"padded", strings.Replace(signed, ".", "==.", 2), nil},
		{"empty", "", ErrNotJWT},
		{"opaque", "opaque-token", ErrNotJWT},
		{"two parts", "a.b", ErrNotJWT},
		{"payload not base64url", es256 + ".!!!." + enc([]byte("sig")), ErrNotJWT},
		{"algorithm not allowed", hs256 + "." + enc([]byte(`{"iss":"i"}`)) + "." + enc([]byte("sig")), ErrNotJWT},
		{"payload not JSON", es256 + "." + enc([]byte("not json")) + "." + enc([]byte("sig")), ErrClaims},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c struct {
				Issuer string `json:"iss"`
				Email  string `json:"email"`
			}
			err := Unverified(tt.token, &c)
			if !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
				t.Fatalf("Unverified: %v, want %v", err, tt.want)
			}
			if tt.want == nil && (c.Issuer != "https://issuer.test" || c.Email != "me@example.test") {
				t.Fatalf("claims = %+v", c)
			}
		})
	}
}
