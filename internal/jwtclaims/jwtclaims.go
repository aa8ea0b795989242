// Package jwtclaims reads the claims of a JSON Web Token without verifying
// it, with go-jose, for the places that only choose what to ask for with a
// token another party verifies (Fulcio verifies identity tokens when it
// issues a certificate, and verifiers check the certificate).
package jwtclaims

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// ErrNotJWT is wrapped by Unverified's errors about a token that is not a
// compact, signed JWT.
var ErrNotJWT = errors.New("not a JWT (want three dot-separated parts, header.payload.signature)")

// ErrClaims is wrapped by Unverified's errors about a payload that is not
// JSON claims.
var ErrClaims = errors.New("payload is not JSON claims")

// Algorithms are the signature algorithms a token may name: those the OIDC
// issuers Fulcio accepts sign with.
var Algorithms = []jose.SignatureAlgorithm{
	jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512,
	jose.ES256, jose.ES384, jose.ES512, jose.EdDSA,
}

// Unverified decodes token's claims into each of dest, as
// encoding/json does, WITHOUT verifying its signature, audience or expiry.
func Unverified(token string, dest ...any) error {
	// Some encoders pad the parts; '=' is never part of base64url's
	// alphabet, so dropping it changes nothing else.
	tok, err := jwt.ParseSigned(strings.ReplaceAll(strings.TrimSpace(token), "=", ""), Algorithms)
	if errors.As(err, new(base64.CorruptInputError)) {
		return fmt.Errorf("%w: a part is not base64url: %v", ErrNotJWT, err)
	}
	if err != nil {
		return fmt.Errorf("%w: %v", ErrNotJWT, err)
	}
	if err := tok.UnsafeClaimsWithoutVerification(dest...); err != nil {
		return fmt.Errorf("%w: %v", ErrClaims, err)
	}
	return nil
}
