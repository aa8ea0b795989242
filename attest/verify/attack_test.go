package verify_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/sigstore/sigstore-go/pkg/bundle"

	"github.com/twinforge/twinforge/attest/verify"
	"github.com/twinforge/twinforge/internal/sigtest"
)

// TestVerifyRefusesAttacks verifies, as an attacker would present it,
// each piece of forged or bent evidence of sigtest's catalogue: signed by
// someone else or under another issuer, slipping past an unanchored
// pattern, about another digest, stamped outside the certificate's
// validity, with a log entry of another certificate, against a trusted
// root missing a part, and verdicts that must not count. Each is refused
// by the check the catalogue names, as a *VerificationError; the good
// evidence beside them verifies.
func TestVerifyRefusesAttacks(t *testing.T) {
	auth, err := sigtest.New()
	if err != nil {
		t.Fatal(err)
	}
	attacks, err := sigtest.Attacks(auth)
	if err != nil {
		t.Fatal(err)
	}
	refused := 0
	for _, at := range attacks {
		t.Run(at.Name, func(t *testing.T) {
			policy, err := verify.ParsePolicy([]byte(at.Policy))
			if err != nil {
				t.Fatalf("policy: %v\n%s", err, at.Policy)
			}
			res, err := verify.Verify(context.Background(), verify.Request{
				Digest: at.Digest, ImageManifest: at.Manifest,
				Provenance: at.Provenance, Image: at.Image, Verdicts: at.Verdicts,
				TrustedRoot: at.TrustedRoot, Policy: policy,
			})
			if at.Check == "" {
				if err != nil {
					t.Fatalf("good evidence refused: %v", err)
				}
				if res.Digest != at.Digest || res.Identity.Subject != sigtest.Builder.Subject || !res.Reproduced {
					t.Errorf("result = %+v", res)
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted; want a refusal by %s", at.Check)
			}
			var ve *verify.VerificationError
			if !errors.As(err, &ve) {
				t.Fatalf("refused with %T, not a VerificationError: %v", err, err)
			}
			if ve.Check != at.Check {
				t.Fatalf("refused by %q, want %q: %v", ve.Check, at.Check, err)
			}
			refused++
			t.Logf("refused by %s: %v", ve.Check, ve.Err)
		})
	}
	t.Logf("%d attacks refused, each by the check named", refused)
}

// TestBadVerdictsDoNotCount: each bad verdict of the catalogue, beside a
// good verdict of another rebuilder, leaves the good one the only one that
// counts (a duplicate rebuilder counts once): the verdict itself was
// refused, not the evidence around it.
func TestBadVerdictsDoNotCount(t *testing.T) {
	auth, err := sigtest.New()
	if err != nil {
		t.Fatal(err)
	}
	attacks, err := sigtest.Attacks(auth)
	if err != nil {
		t.Fatal(err)
	}
	for _, at := range attacks {
		if at.GoodVerdict == nil {
			continue
		}
		t.Run(at.Name, func(t *testing.T) {
			policy, err := verify.ParsePolicy([]byte(strings.Replace(at.Policy, "count: 2", "count: 1", 1)))
			if err != nil {
				t.Fatal(err)
			}
			res, err := verify.Verify(context.Background(), verify.Request{
				Digest: at.Digest, ImageManifest: at.Manifest, Provenance: at.Provenance, Image: at.Image,
				Verdicts: append(append([]*bundle.Bundle(nil), at.Verdicts...), at.GoodVerdict), TrustedRoot: at.TrustedRoot, Policy: policy,
			})
			if err != nil {
				t.Fatalf("with a good verdict beside: %v", err)
			}
			counted := 0
			for _, vr := range res.RebuildVerdicts[:len(at.Verdicts)] {
				if vr.Counted {
					counted++
				} else if vr.Reason == "" {
					t.Errorf("verdict of %s does not count and says not why", vr.Signer)
				}
			}
			if counted != at.VerdictsCounting || !res.RebuildVerdicts[len(at.Verdicts)].Counted {
				t.Errorf("%d of the attack's verdicts counted (want %d), the good one: %+v", counted, at.VerdictsCounting, res.RebuildVerdicts[len(at.Verdicts)])
			}
		})
	}
}
