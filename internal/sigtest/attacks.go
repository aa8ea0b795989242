package sigtest

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/root"

	"github.com/twinforge/twinforge/attest/verify"
)

// The parties of the attacks.
var (
	// Issuer is the OIDC issuer the policies trust.
	Issuer = "https://token.sigtest.invalid"
	// Builder signs the provenance; RebuilderA and RebuilderB are the
	// independent rebuilders the verdict policies trust.
	Builder    = Identity{Subject: "builder@example.test", Issuer: Issuer}
	RebuilderA = Identity{Subject: "rebuilder@a.example.test", Issuer: Issuer}
	RebuilderB = Identity{Subject: "rebuilder@b.example.test", Issuer: Issuer}
)

// Repository is the source repository of the good provenance; the policy
// allows the team's repositories (RepositoryPattern).
const (
	Repository        = "https://git.example.test/team/app"
	RepositoryPattern = "https://git.example.test/team/*"
)

// Attack is evidence about an image and the policy to verify it by, made
// to be refused by one check (Check), or, for the good evidence, accepted
// (Check "").
type Attack struct {
	Name string
	// Digest is the image verified; Manifest its manifest (a minimal OCI
	// manifest whose sha256 is Digest).
	Digest   string
	Manifest []byte
	// The image's evidence: Image may be nil.
	Provenance, Image *bundle.Bundle
	Verdicts          []*bundle.Bundle
	// TrustedRoot and Policy (YAML) are what the verifier trusts.
	TrustedRoot *root.TrustedRoot
	Policy      string
	// Check is the verify.Check* constant of the check that refuses, ""
	// for evidence that verifies.
	Check string
	// IgnoredInRegistry says that in a registry, where anyone who can push
	// may attach a referrer, the bad bundle is junk to skip rather than a
	// reason to refuse (the webhook skips bundles no policy identity
	// signed): the image verifies by its other evidence there.
	IgnoredInRegistry bool
	// GoodVerdict is, for an attack on rebuild verdicts, a good verdict of
	// RebuilderB; VerdictsCounting how many of Verdicts may count beside it.
	GoodVerdict      *bundle.Bundle
	VerdictsCounting int
}

// Manifest is a minimal OCI image manifest, different on every call, and
// its digest.
func Manifest() (manifest []byte, digest string) {
	nonce := make([]byte, 8)
	_, _ = rand.Read(nonce)
	manifest = fmt.Appendf(nil, `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",`+
		`"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":2},"layers":[],`+
		`"annotations":{"nonce":"%x"}}`, strings.Repeat("0", 64), nonce)
	sum := sha256.Sum256(manifest)
	return manifest, "sha256:" + hex.EncodeToString(sum[:])
}

// PolicyDoc is a policy trusting ids (certificate identities, issuer and
// subject exactly), with the extra top-level lines given.
func PolicyDoc(ids []Identity, extra ...string) string {
	var b strings.Builder
	b.WriteString("apiVersion: twinforge.dev/v2\nkind: Policy\nidentities:\n")
	for _, id := range ids {
		fmt.Fprintf(&b, "  - issuer: %q\n    subject: %q\n", id.Issuer, id.Subject)
	}
	for _, e := range extra {
		b.WriteString(e + "\n")
	}
	return b.String()
}

// noLog lets a bundle without a log entry through, for attacks on the
// other checks.
const noLog = "requireTransparencyLog: false"

// strictPolicy is the policy of most attacks: the builder, the team's
// repositories, the local builder, a build at most an hour old,
// timestamps and a log entry required (the defaults).
func strictPolicy(extra ...string) string {
	return PolicyDoc([]Identity{Builder}, append([]string{
		"sourceRepositories: ['" + RepositoryPattern + "']",
		"builderIDs: ['" + DefaultBuilderID + "']",
		"maxAge: 1h",
	}, extra...)...)
}

// verdictPolicy adds requireReproduced of count from the rebuilders.
func verdictPolicy(count int, rebuilders ...Identity) string {
	lines := []string{"requireReproduced:", fmt.Sprintf("  count: %d", count), "  by:"}
	for _, r := range rebuilders {
		lines = append(lines, fmt.Sprintf("    - issuer: %q\n      subject: %q", r.Issuer, r.Subject))
	}
	return strictPolicy(lines...)
}

// Attacks makes the catalogue of evidence an attacker might present, each
// with the check that must refuse it, and the good evidence first. Each
// call makes new evidence, valid for a few minutes.
func Attacks(a *Authority) ([]Attack, error) {
	other, err := New()
	if err != nil {
		return nil, err
	}
	full, err := a.TrustedRoot()
	if err != nil {
		return nil, err
	}
	manifest, digest := Manifest()
	otherManifest, otherDigest := Manifest()
	now := time.Now()

	var errs []error
	must := func(b *bundle.Bundle, err error) *bundle.Bundle {
		if err != nil {
			errs = append(errs, err)
		}
		return b
	}
	trust := func(tr *root.TrustedRoot, err error) *root.TrustedRoot {
		if err != nil {
			errs = append(errs, err)
		}
		return tr
	}
	good := Provenance{Digest: digest, Repository: Repository + ".git", Ref: "refs/heads/main", RebuildDigest: digest, Reproduced: true}
	prov := func(edit func(*Provenance)) []byte {
		p := good
		if edit != nil {
			edit(&p)
		}
		return p.Statement()
	}
	sign := func(payload []byte, id Identity, o Options) *bundle.Bundle {
		return must(a.SignStatement(payload, id, o))
	}
	goodStatement := prov(nil)
	goodProv := sign(goodStatement, Builder, Options{})
	goodImage := must(a.SignArtifact(manifest, Builder, Options{}))
	verdict := func(v Verdict, by Identity) *bundle.Bundle {
		if v.Digest == "" {
			v.Digest = digest
		}
		if v.Provenance == nil {
			v.Provenance = goodStatement
		}
		if v.ProvenanceSigner == (Identity{}) {
			v.ProvenanceSigner = Builder
		}
		return sign(v.Statement(), by, Options{})
	}
	stranger := Identity{Subject: "mallory@example.test", Issuer: Issuer}

	attack := func(name, check string, p *bundle.Bundle, policy string) Attack {
		return Attack{Name: name, Digest: digest, Manifest: manifest, Provenance: p, Image: goodImage, TrustedRoot: full, Policy: policy, Check: check}
	}
	out := []Attack{
		attack("good evidence", "", goodProv, strictPolicy()),

		// Who signed.
		attack("wrong identity", verify.CheckIdentity, sign(goodStatement, stranger, Options{}), strictPolicy()),
		attack("wrong issuer", verify.CheckIdentity, sign(goodStatement, Identity{Subject: Builder.Subject, Issuer: "https://evil.example.test"}, Options{}), strictPolicy()),
		attack("subject regexp is anchored at the end", verify.CheckIdentity, sign(goodStatement, Identity{Subject: "builder@example.test.evil.test", Issuer: Issuer}, Options{}),
			PolicyDoc(nil, "  - issuer: "+Issuer+"\n    subjectRegExp: 'builder@example\\.test'")),
		attack("subject regexp is anchored at the start", verify.CheckIdentity, sign(goodStatement, Identity{Subject: "evil-builder@example.test", Issuer: Issuer}, Options{}),
			PolicyDoc(nil, "  - issuer: "+Issuer+"\n    subjectRegExp: 'builder@example\\.test'")),
		attack("issuer regexp is anchored", verify.CheckIdentity, sign(goodStatement, Identity{Subject: Builder.Subject, Issuer: Issuer + ".evil.test"}, Options{}),
			PolicyDoc(nil, "  - issuerRegExp: 'https://token\\.sigtest\\.invalid'\n    subject: "+Builder.Subject)),
		attack("an alternation stays inside the anchors", verify.CheckIdentity, sign(goodStatement, Identity{Subject: "admin@example.test.evil.test", Issuer: Issuer}, Options{}),
			PolicyDoc(nil, "  - issuer: "+Issuer+"\n    subjectRegExp: 'admin@example\\.test|builder@example\\.test'")),
		attack("a regexp dot is not a wildcard for the domain", verify.CheckIdentity, sign(goodStatement, Identity{Subject: "builder@exampleXtest", Issuer: Issuer}, Options{}),
			PolicyDoc(nil, "  - issuer: "+Issuer+"\n    subjectRegExp: 'builder@example\\.test'")),

		// What the provenance says.
		attack("provenance for another digest", verify.CheckSubject, sign(prov(func(p *Provenance) { p.Digest = otherDigest; p.RebuildDigest = otherDigest }), Builder, Options{}), strictPolicy()),
		// The builder's own record of its rebuild proves nothing: without a
		// rebuilder's verdict, requireReproduced refuses whatever it says.
		attack("builder's record of a rebuild of another digest", verify.CheckReproduced, sign(prov(func(p *Provenance) { p.RebuildDigest = otherDigest }), Builder, Options{}), verdictPolicy(1, RebuilderA, RebuilderB)),
		attack("builder's record that it reproduced, no verdict", verify.CheckReproduced, goodProv, verdictPolicy(1, RebuilderA, RebuilderB)),
		attack("repository glob does not cross a slash", verify.CheckSourceRepositories, sign(prov(func(p *Provenance) { p.Repository = Repository + "/../../evil/app" }), Builder, Options{}), strictPolicy()),
		attack("repository glob is anchored", verify.CheckSourceRepositories, sign(prov(func(p *Provenance) { p.Repository = "https://evil.test/" + Repository }), Builder, Options{}), strictPolicy()),
		attack("repository regexp does not match past a newline", verify.CheckSourceRepositories, sign(prov(func(p *Provenance) { p.Repository = Repository + "\nhttps://evil.test/x" }), Builder, Options{}),
			PolicyDoc([]Identity{Builder}, "sourceRepositories: ['regexp:https://git\\.example\\.test/team/.*']")),
		attack("no repository where the policy lists some", verify.CheckSourceRepositories, sign(prov(func(p *Provenance) { p.Repository = "" }), Builder, Options{}), strictPolicy()),
		attack("repository other than the certificate's", verify.CheckSourceRepositories,
			sign(goodStatement, Identity{Subject: Builder.Subject, Issuer: Issuer, SourceRepository: "https://git.example.test/team/other"}, Options{}), strictPolicy()),
		attack("builder id is exact", verify.CheckBuilderIDs, sign(prov(func(p *Provenance) { p.BuilderID = DefaultBuilderID + "/../evil" }), Builder, Options{}), strictPolicy()),
		attack("builder glob stays in its path segment", verify.CheckBuilderIDs,
			sign(prov(func(p *Provenance) {
				p.BuilderID = "https://git.example.test/builds/twinforge.yml@refs/tags/v1/../../heads/evil"
			}), Builder, Options{}),
			PolicyDoc([]Identity{Builder}, "builderIDs: ['https://git.example.test/builds/twinforge.yml@refs/tags/*']")),
		attack("build older than maxAge", verify.CheckMaxAge, sign(prov(func(p *Provenance) { p.FinishedOn = now.Add(-2 * time.Hour) }), Builder, Options{}), strictPolicy()),
		attack("build finished in the future", verify.CheckMaxAge, sign(prov(func(p *Provenance) { p.FinishedOn = now.Add(time.Hour) }), Builder, Options{}), strictPolicy()),

		// When it was signed.
		// The timestamp authority's time alone, as with a Rekor v2 log,
		// whose entries carry no integrated time.
		attack("certificate expired when stamped", verify.CheckTimestamp, sign(goodStatement, Builder, Options{NotBefore: now.Add(-30 * time.Minute), NoLogEntry: true}), strictPolicy(noLog)),
		attack("certificate not yet valid when stamped", verify.CheckTimestamp, sign(goodStatement, Builder, Options{NotBefore: now.Add(20 * time.Minute), NoLogEntry: true}), strictPolicy(noLog)),
		attack("certificate expired, no trusted time at all", verify.CheckTimestamp, sign(goodStatement, Builder, Options{NotBefore: now.Add(-30 * time.Minute), NoLogEntry: true, NoTimestamp: true}),
			strictPolicy(noLog, "requireSignedTimestamp: false")),
		// A Rekor v1 entry's integrated time is checked with the entry.
		attack("logged before the certificate was valid", verify.CheckTransparencyLog, sign(goodStatement, Builder, Options{IntegratedTime: now.Add(-2 * time.Minute)}), strictPolicy()),
		attack("logged after the certificate expired", verify.CheckTransparencyLog, sign(goodStatement, Builder, Options{IntegratedTime: now.Add(time.Hour)}), strictPolicy()),
		attack("no timestamp", verify.CheckTimestamp, sign(goodStatement, Builder, Options{NoTimestamp: true}), strictPolicy()),
		attack("timestamp of another signature", verify.CheckTimestamp,
			must(WithTimestampsOf(goodProv, sign(goodStatement, Builder, Options{}))), strictPolicy()),
		attack("no log entry", verify.CheckTransparencyLog, sign(goodStatement, Builder, Options{NoLogEntry: true}), strictPolicy()),
		attack("certificate and log entry disagree", verify.CheckTransparencyLog,
			must(WithLogEntriesOf(goodProv, sign(goodStatement, stranger, Options{}))), strictPolicy()),

		// What is trusted.
		{Name: "unsigned", Check: verify.CheckSignature, Digest: digest, Manifest: manifest, TrustedRoot: full, Policy: strictPolicy()},
		attack("tampered statement", verify.CheckSignature, must(Edit(goodProv, func(pb *protobundle.Bundle) {
			env := pb.GetDsseEnvelope()
			env.Payload = []byte(strings.Replace(string(env.Payload), DefaultBuilderID, "https://evil.test/builder", 1))
		})), strictPolicy()),
	}

	rootAttack := func(name, check string, tr *root.TrustedRoot) Attack {
		at := attack(name, check, goodProv, strictPolicy())
		at.TrustedRoot = tr
		return at
	}
	out = append(out,
		rootAttack("trusted root without the signing CA", verify.CheckCertificate, trust(TrustedRootOf(other, a, a))),
		rootAttack("trusted root without the timestamp authority", verify.CheckTimestamp, trust(TrustedRootOf(a, nil, a))),
		rootAttack("trusted root without the log", verify.CheckTransparencyLog, trust(TrustedRootOf(a, a, nil))),
		rootAttack("another deployment's trusted root", verify.CheckCertificate, trust(other.TrustedRoot())),
	)

	ignoredInRegistry := func(at Attack) Attack { at.IgnoredInRegistry = true; return at }
	imageAttack := func(name, check string, img *bundle.Bundle) Attack {
		at := attack(name, check, goodProv, strictPolicy())
		at.Image = img
		return at
	}
	out = append(out,
		imageAttack("image signature over another manifest", verify.CheckSubject, must(a.SignArtifact(otherManifest, Builder, Options{}))),
		ignoredInRegistry(imageAttack("image signed by a stranger", verify.CheckIdentity, must(a.SignArtifact(manifest, stranger, Options{})))),
		imageAttack("image signature without a log entry", verify.CheckTransparencyLog, must(a.SignArtifact(manifest, Builder, Options{NoLogEntry: true}))),
	)

	firstVerdictAttack := len(out)
	verdictAttack := func(name, check string, count int, verdicts ...*bundle.Bundle) Attack {
		at := attack(name, check, goodProv, verdictPolicy(count, RebuilderA, RebuilderB))
		at.Verdicts = verdicts
		return at
	}
	duplicate := func(at Attack) Attack { at.VerdictsCounting = 1; return at }
	withPolicy := func(at Attack, policy string) Attack { at.Policy = policy; return at }
	out = append(out,
		verdictAttack("two verdicts from two rebuilders", "", 2, verdict(Verdict{}, RebuilderA), verdict(Verdict{}, RebuilderB)),
		verdictAttack("no verdict", verify.CheckReproduced, 1),
		verdictAttack("verdict for another digest", verify.CheckReproduced, 1, verdict(Verdict{Digest: otherDigest}, RebuilderA)),
		verdictAttack("verdict whose rebuild gave another digest", verify.CheckReproduced, 1, verdict(Verdict{RebuiltDigest: otherDigest}, RebuilderA)),
		verdictAttack("verdict that did not reproduce", verify.CheckReproduced, 1, verdict(Verdict{Result: "differs"}, RebuilderA)),
		verdictAttack("verdict from an untrusted rebuilder", verify.CheckReproduced, 1, verdict(Verdict{}, stranger)),
		duplicate(verdictAttack("verdicts from a duplicate rebuilder", verify.CheckReproduced, 2, verdict(Verdict{}, RebuilderA), verdict(Verdict{}, RebuilderA))),
		// Even where the builder is also trusted as a rebuilder.
		withPolicy(verdictAttack("verdict signed by the builder", verify.CheckReproduced, 1, verdict(Verdict{}, Builder)), verdictPolicy(1, RebuilderA, RebuilderB, Builder)),
		verdictAttack("verdict for another provenance", verify.CheckReproduced, 1, verdict(Verdict{Provenance: prov(func(p *Provenance) { p.Ref = "refs/heads/other" })}, RebuilderA)),
		verdictAttack("verdict for a provenance by another signer", verify.CheckReproduced, 1, verdict(Verdict{ProvenanceSigner: stranger}, RebuilderA)),
		verdictAttack("verdict whose certificate expired", verify.CheckReproduced, 1, sign(Verdict{Digest: digest, Provenance: goodStatement, ProvenanceSigner: Builder}.Statement(), RebuilderA, Options{NotBefore: now.Add(-30 * time.Minute)})),
	)
	if goodB := verdict(Verdict{}, RebuilderB); goodB != nil {
		for i := firstVerdictAttack; i < len(out); i++ {
			if out[i].Check == verify.CheckReproduced {
				out[i].GoodVerdict = goodB
			}
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("making the attacks: %w", errs[0])
	}
	return out, nil
}
