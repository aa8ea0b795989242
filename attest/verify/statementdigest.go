package verify

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/sigstore/sigstore-go/pkg/bundle"
)

// StatementDigest is the sha256 ("sha256:<hex>") of the in-toto statement
// a DSSE bundle signs: its envelope's payload, as signed. A release index
// names an image's provenance by it. Nothing is verified here.
func StatementDigest(b *bundle.Bundle) (string, error) {
	if b == nil || b.Bundle == nil {
		return "", errors.New("no bundle")
	}
	env := b.GetDsseEnvelope()
	if env == nil {
		return "", errors.New("the bundle holds no DSSE envelope")
	}
	if len(env.GetPayload()) == 0 {
		return "", fmt.Errorf("the bundle's envelope has no payload")
	}
	sum := sha256.Sum256(env.GetPayload())
	return "sha256:" + hex.EncodeToString(sum[:]), nil
}
