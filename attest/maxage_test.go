package attest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"testing"
	"time"

	"github.com/twinforge/twinforge/attest/verify"
)

// With timestamps and the log off, the build's age comes from the signer's
// own finishedOn: one in the future would keep a build within maxAge for
// ever, so it is refused.
func TestMaxAgeRefusesAFinishInTheFuture(t *testing.T) {
	ctx := context.Background()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	keyPath, pubPath := writeKeyPair(t, key, nil)
	s, err := NewKeySigner(keyPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, digest, _ := testLayout(t)
	signAt := func(finished time.Time) *verify.Bundles {
		t.Helper()
		info := fixtureBuildInfo(t)
		info.Subject.Digest = digest
		info.StartedOn, info.FinishedOn = finished.Add(-time.Minute), finished
		info.Rebuild.Digest = digest
		st, err := Provenance(info)
		if err != nil {
			t.Fatal(err)
		}
		data, err := MarshalStatement(st)
		if err != nil {
			t.Fatal(err)
		}
		b, err := s.SignStatement(ctx, data)
		if err != nil {
			t.Fatal(err)
		}
		return &verify.Bundles{Provenance: b}
	}
	policy := mustPolicy(t, fmt.Sprintf("apiVersion: twinforge.dev/v2\nkind: Policy\nidentities:\n  - publicKey: %q\nmaxAge: 1h\nrequireSignedTimestamp: false\nrequireTransparencyLog: false\n", pubPath))
	verifyAt := func(bs *verify.Bundles) error {
		_, err := verify.Verify(ctx, verify.Request{Digest: digest, Provenance: bs.Provenance, Policy: policy})
		return err
	}
	if err := verifyAt(signAt(time.Now().Add(-10 * time.Minute))); err != nil {
		t.Fatalf("a build of ten minutes ago: %v", err)
	}
	if err := verifyAt(signAt(time.Now().Add(time.Minute))); err != nil {
		t.Fatalf("a builder clock a minute ahead: %v", err)
	}
	err = verifyAt(signAt(time.Now().Add(100 * 365 * 24 * time.Hour)))
	wantCheck(t, err, verify.CheckMaxAge)
	t.Logf("refused: %v", err)
}
