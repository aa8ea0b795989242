package verify

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	jsonv1 "encoding/json"
	"encoding/json/v2"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	protodsse "github.com/sigstore/protobuf-specs/gen/pb-go/dsse"
	"github.com/sigstore/sigstore-go/pkg/bundle"
	"google.golang.org/protobuf/encoding/protojson"
)

// The fuzz targets' world: one image, a builder key the policy trusts and
// a rebuilder key whose verdicts it counts, at a fixed time.
var (
	fuzzNow      = time.Date(2026, 11, 2, 12, 0, 0, 0, time.UTC)
	fuzzManifest = []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"}`)
	fuzzDigest   = "sha256:" + hexSHA256(fuzzManifest)
)

const (
	fuzzBuilderID = "https://twinforge.dev/builders/local/v1"
	fuzzRepo      = "https://git.example.test/team/app"
)

func hexSHA256(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// testKey is a signing key from testdata/keys.
type testKey struct {
	priv *ecdsa.PrivateKey
	path string // of the public key
	hint string
}

func loadTestKey(t testing.TB, name string) testKey {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "keys", name+".key"))
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		t.Fatalf("%s.key is not PEM", name)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	priv := k.(*ecdsa.PrivateKey)
	hint, err := KeyHint(&priv.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return testKey{priv: priv, path: filepath.Join("testdata", "keys", name+".pub"), hint: hint}
}

// pae is DSSE's pre-authentication encoding.
func pae(payloadType string, payload []byte) []byte {
	return fmt.Appendf(nil, "DSSEv1 %d %s %d %s", len(payloadType), payloadType, len(payload), payload)
}

// signDSSE is a key-signed v0.3 bundle of a DSSE envelope, the kind
// twinforge's key signer writes, made here by hand so that any payload can
// be signed.
func (k testKey) signDSSE(t testing.TB, payloadType string, payload []byte) *bundle.Bundle {
	t.Helper()
	digest := sha256.Sum256(pae(payloadType, payload))
	sig, err := ecdsa.SignASN1(rand.Reader, k.priv, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	b, err := bundle.NewBundle(&protobundle.Bundle{
		MediaType: BundleMediaType,
		VerificationMaterial: &protobundle.VerificationMaterial{
			Content: &protobundle.VerificationMaterial_PublicKey{PublicKey: &protocommon.PublicKeyIdentifier{Hint: k.hint}},
		},
		Content: &protobundle.Bundle_DsseEnvelope{DsseEnvelope: &protodsse.Envelope{
			Payload: payload, PayloadType: payloadType, Signatures: []*protodsse.Signature{{Sig: sig}},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// verifiesDSSE checks, without sigstore-go, that a bundle's JSON holds a
// DSSE envelope with a signature by k over its payload, and returns the
// payload.
func (k testKey) verifiesDSSE(bundleJSON []byte) ([]byte, bool) {
	var b struct {
		DSSE struct {
			Payload     string `json:"payload"`
			PayloadType string `json:"payloadType"`
			Signatures  []struct {
				Sig string `json:"sig"`
			} `json:"signatures"`
		} `json:"dsseEnvelope"`
	}
	if err := jsonv1.Unmarshal(bundleJSON, &b); err != nil {
		return nil, false
	}
	payload, err := decodeBase64(b.DSSE.Payload)
	if err != nil {
		return nil, false
	}
	digest := sha256.Sum256(pae(b.DSSE.PayloadType, payload))
	for _, s := range b.DSSE.Signatures {
		sig, err := decodeBase64(s.Sig)
		if err == nil && ecdsa.VerifyASN1(&k.priv.PublicKey, digest[:], sig) {
			return payload, true
		}
	}
	return nil, false
}

// provenanceDoc is an SLSA provenance statement about digest, as the
// fuzz policy wants it.
func provenanceDoc(digest string) []byte {
	h := strings.TrimPrefix(digest, "sha256:")
	return fmt.Appendf(nil, `{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"example.test/app","digest":{"sha256":%q}}],`+
		`"predicateType":"https://slsa.dev/provenance/v1","predicate":{"buildDefinition":{"buildType":"https://twinforge.dev/buildtypes/dockerfile/v1",`+
		`"externalParameters":{"source":{"repository":%q,"ref":"refs/heads/main"}}},"runDetails":{"builder":{"id":%q},`+
		`"metadata":{"finishedOn":%q},"byproducts":[{"name":"rebuild","digest":{"sha256":%q},"annotations":{"reproduced":true}}]}}}`,
		h, fuzzRepo+".git", fuzzBuilderID, fuzzNow.Add(-10*time.Minute).Format(time.RFC3339), h)
}

// verdictDoc is a rebuild verdict about digest for the provenance whose
// signed bytes are prov, signed by builderHint.
func verdictDoc(digest string, prov []byte, builderHint string) []byte {
	h := strings.TrimPrefix(digest, "sha256:")
	return fmt.Appendf(nil, `{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"example.test/app","digest":{"sha256":%q}}],`+
		`"predicateType":%q,"predicate":{"rebuilder":{"id":"https://rebuild.example.test/v1"},"result":"reproduced","rebuiltDigest":%q,`+
		`"provenance":{"predicateType":"https://slsa.dev/provenance/v1","digest":{"sha256":%q},"signer":{"publicKey":%q}},`+
		`"inputs":{"resolvedDependencies":[],"sourceCheckout":{"kind":"git","contextDigest":"sha256:00"}},"rebuiltOn":%q}}`,
		h, PredicateRebuildVerdict, digest, hexSHA256(prov), builderHint, fuzzNow.Add(-5*time.Minute).Format(time.RFC3339))
}

func mustParsePolicy(t testing.TB, doc string) *Policy {
	t.Helper()
	p, err := parsePolicy([]byte(doc), ".", os.ReadFile)
	if err != nil {
		t.Fatalf("policy:\n%s\n%v", doc, err)
	}
	return p
}

// fuzzPolicy trusts the builder key, wants the fuzz repository, builder
// and a build at most an hour old, and, with a rebuilder, the image
// reproduced by one verdict of the rebuilder key.
func fuzzPolicy(t testing.TB, builder testKey, rebuilder *testKey) *Policy {
	doc := "apiVersion: twinforge.dev/v2\nkind: Policy\nidentities:\n  - publicKey: " + builder.path +
		"\nsourceRepositories: ['https://git.example.test/team/*']\nbuilderIDs: ['" + fuzzBuilderID + "']\n" +
		"maxAge: 1h\nrequireSignedTimestamp: false\nrequireTransparencyLog: false\n"
	if rebuilder != nil {
		doc += "requireReproduced:\n  count: 1\n  by:\n    - publicKey: " + rebuilder.path + "\n"
	}
	return mustParsePolicy(t, doc)
}

func bundleJSON(t testing.TB, b *bundle.Bundle) []byte {
	t.Helper()
	data, err := protojson.Marshal(b.Bundle)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// strictJSON decodes what a verifier must agree on with a decoder of its
// own: case-sensitive names, no duplicate names (encoding/json/v2's
// defaults), protobuf's snake_case spellings accepted as protojson does.
func strictJSON(data []byte) (map[string]any, bool) {
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, false
	}
	return m, true
}

// field walks objects by name, either spelling.
func field(v any, names ...string) any {
	for _, n := range names {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		next, ok := m[n]
		if !ok {
			next = m[snake(n)]
		}
		v = next
	}
	return v
}

var upper = regexp.MustCompile(`[A-Z]`)

func snake(s string) string {
	return upper.ReplaceAllStringFunc(s, func(u string) string { return "_" + strings.ToLower(u) })
}

func str(v any) string { s, _ := v.(string); return s }

// subjectNames reports whether a decoded statement's subject lists digest.
func subjectNames(st any, digest string) bool {
	subjects, _ := field(st, "subject").([]any)
	for _, s := range subjects {
		if str(field(s, "digest", "sha256")) == strings.TrimPrefix(digest, "sha256:") {
			return true
		}
	}
	return false
}

// FuzzBundle: bundles come from registries, where anyone may attach one.
// ParseBundle, Describe and Verify never panic on any bytes, and Verify
// accepts a bundle only when the trusted key really signed its payload
// and that payload is a statement about the image.
func FuzzBundle(f *testing.F) {
	builder := loadTestKey(f, "builder")
	policy := fuzzPolicy(f, builder, nil)
	f.Add(bundleJSON(f, builder.signDSSE(f, PayloadType, provenanceDoc(fuzzDigest))))
	f.Add(bundleJSON(f, builder.signDSSE(f, PayloadType, provenanceDoc("sha256:"+strings.Repeat("0", 64)))))
	f.Add(bundleJSON(f, loadTestKey(f, "rebuilder").signDSSE(f, PayloadType, provenanceDoc(fuzzDigest))))
	f.Add([]byte(`{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := ParseBundle(data)
		if err != nil {
			return
		}
		_, _ = Describe(b)
		_ = policy.SignedByPolicyIdentity(b, nil)
		res, err := Verify(context.Background(), Request{Digest: fuzzDigest, Provenance: b, Policy: policy, Now: fuzzNow})
		if err != nil {
			var ve *VerificationError
			if !errors.As(err, &ve) {
				t.Fatalf("a refusal that is not a VerificationError: %v", err)
			}
			return
		}
		payload, ok := builder.verifiesDSSE(data)
		if !ok {
			t.Fatalf("accepted a bundle whose payload the trusted key did not sign (identity %s)", res.Identity)
		}
		st, ok := strictJSON(payload)
		if !ok || !subjectNames(st, fuzzDigest) {
			t.Fatalf("accepted a payload that is not a statement about %s:\n%s", fuzzDigest, payload)
		}
	})
}

// FuzzProvenance: the provenance statement is what a builder's key signs,
// and its content comes in part from what the build was given. Whatever
// bytes are signed, Verify never panics, and what it accepts says, read by
// a strict decoder of its own, what the policy requires: this image, this
// builder, a repository of the team, a rebuild of the same digest.
func FuzzProvenance(f *testing.F) {
	builder := loadTestKey(f, "builder")
	policy := fuzzPolicy(f, builder, nil)
	good := provenanceDoc(fuzzDigest)
	f.Add(good)
	f.Add([]byte(strings.Replace(string(good), `"runDetails"`, `"run_details"`, 1)))
	f.Add([]byte(strings.Replace(string(good), `"reproduced":true`, `"reproduced":false`, 1)))
	f.Add([]byte(strings.Replace(string(good), fuzzRepo, "https://git.example.test/team/app/../../evil/app", 1)))
	f.Add([]byte(strings.Replace(string(good), `"builder":{`, `"builder":{"id":"https://evil.test/b",`, 1)))
	f.Fuzz(func(t *testing.T, payload []byte) {
		b := builder.signDSSE(t, PayloadType, payload)
		res, err := Verify(context.Background(), Request{Digest: fuzzDigest, Provenance: b, Policy: policy, Now: fuzzNow})
		if err != nil {
			var ve *VerificationError
			if !errors.As(err, &ve) {
				t.Fatalf("a refusal that is not a VerificationError: %v", err)
			}
			return
		}
		st, ok := strictJSON(payload)
		if !ok {
			t.Fatalf("accepted a statement a strict JSON decoder refuses:\n%s", payload)
		}
		pred := field(st, "predicate")
		builderID := str(field(pred, "runDetails", "builder", "id"))
		repo := strings.TrimSuffix(strings.TrimSuffix(str(field(pred, "buildDefinition", "externalParameters", "source", "repository")), "/"), ".git")
		switch {
		case !subjectNames(st, fuzzDigest):
			t.Fatalf("accepted a statement about another image:\n%s", payload)
		case str(field(st, "predicateType")) != PredicateType:
			t.Fatalf("accepted predicate type %q", field(st, "predicateType"))
		case builderID != fuzzBuilderID || builderID != res.BuilderID:
			t.Fatalf("accepted builder %q (Verify read %q)", builderID, res.BuilderID)
		case !strings.HasPrefix(repo, "https://git.example.test/team/") || strings.Contains(strings.TrimPrefix(repo, "https://git.example.test/team/"), "/"):
			t.Fatalf("accepted source repository %q (Verify read %q)", repo, res.SourceRepository)
		case len(res.ReproducedBy) != 0:
			// The builder's own record of its rebuild is information, never proof.
			t.Fatalf("counted rebuilders %v without a verdict:\n%s", res.ReproducedBy, payload)
		}
	})
}

// FuzzRebuildVerdict: a verdict is signed by a rebuilder, about an image
// someone else built. Whatever a trusted rebuilder's key signs, Verify
// never panics, and a verdict counts only when, read by a strict decoder,
// it says this image was reproduced from this very provenance, signed by
// its builder.
func FuzzRebuildVerdict(f *testing.F) {
	builder, rebuilder := loadTestKey(f, "builder"), loadTestKey(f, "rebuilder")
	policy := fuzzPolicy(f, builder, &rebuilder)
	prov := provenanceDoc(fuzzDigest)
	provBundle := builder.signDSSE(f, PayloadType, prov)
	good := verdictDoc(fuzzDigest, prov, builder.hint)
	f.Add(good)
	f.Add([]byte(strings.Replace(string(good), `"result":"reproduced"`, `"result":"failed","Result":"reproduced"`, 1)))
	f.Add([]byte(strings.Replace(string(good), `"rebuiltDigest":"`, `"RebuiltDigest":"sha256:`+strings.Repeat("1", 64)+`","rebuiltDigest":"`, 1)))
	f.Add(verdictDoc(fuzzDigest, []byte("another provenance"), builder.hint))
	f.Add(verdictDoc(fuzzDigest, prov, rebuilder.hint))
	f.Fuzz(func(t *testing.T, payload []byte) {
		verdict := rebuilder.signDSSE(t, PayloadType, payload)
		res, err := Verify(context.Background(), Request{Digest: fuzzDigest, Provenance: provBundle, Verdicts: []*bundle.Bundle{verdict}, Policy: policy, Now: fuzzNow})
		if err != nil {
			var ve *VerificationError
			if !errors.As(err, &ve) || ve.Check != CheckReproduced {
				t.Fatalf("a verdict made Verify fail otherwise than by %s: %v", CheckReproduced, err)
			}
			return
		}
		st, ok := strictJSON(payload)
		if !ok {
			t.Fatalf("counted a verdict a strict JSON decoder refuses:\n%s", payload)
		}
		pred := field(st, "predicate")
		switch {
		case len(res.ReproducedBy) != 1 || res.ReproducedBy[0].PublicKey != rebuilder.hint:
			t.Fatalf("counted %v, want the rebuilder alone", res.ReproducedBy)
		case str(field(st, "predicateType")) != PredicateRebuildVerdict || !subjectNames(st, fuzzDigest):
			t.Fatalf("counted a verdict of another kind or about another image:\n%s", payload)
		case str(field(pred, "result")) != VerdictReproduced:
			t.Fatalf("counted a verdict whose result is %q:\n%s", field(pred, "result"), payload)
		case str(field(pred, "rebuiltDigest")) != fuzzDigest:
			t.Fatalf("counted a verdict whose rebuild gave %q:\n%s", field(pred, "rebuiltDigest"), payload)
		case str(field(pred, "provenance", "digest", "sha256")) != hexSHA256(prov):
			t.Fatalf("counted a verdict for another provenance:\n%s", payload)
		case str(field(pred, "provenance", "signer", "publicKey")) != builder.hint:
			t.Fatalf("counted a verdict for a provenance by another signer:\n%s", payload)
		}
	})
}

// FuzzParsePolicy: policies are written by people and reloaded while the
// admission webhook runs. Parsing never panics, every refusal wraps
// ErrInvalidPolicy, and an accepted policy says who may sign; every
// regular expression it holds stands on its own, so that anchoring it
// cannot be undone from inside ("a)|(.*").
func FuzzParsePolicy(f *testing.F) {
	for _, p := range []string{filepath.Join("..", "testdata", "policy.yaml")} {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	head := "apiVersion: twinforge.dev/v2\nkind: Policy\n"
	f.Add([]byte(head + "identities: [{issuer: https://i.test, subject: me}]\nmaxAge: 30d\n"))
	f.Add([]byte(head + "identities:\n  - issuerRegExp: 'https://i\\.test'\n    subjectRegExp: '.*@x\\.test'\nsourceRepositories: ['regexp:https://g/o/.*', 'https://g/o/*']\n"))
	f.Add([]byte(head + "identities:\n  - publicKey: key.pub\nrequireReproduced:\n  count: 2\n  by: [{publicKey: key.pub}, {issuer: a, subject: b}]\n"))
	f.Add([]byte(`{"apiVersion":"twinforge.dev/v2","kind":"Policy","identities":[{"issuer":"a","subject":"b"}],"builderIDs":["x/**"]}`))
	// Regression: regular expressions that closed the anchoring group.
	f.Add([]byte(head + "identities:\n  - issuer: https://i.test\n    subjectRegExp: 'me@x\\.test)|(.*'\n"))
	f.Add([]byte(head + "identities: [{issuer: a, subject: b}]\nsourceRepositories: ['regexp:https://g/o)|(.*']\n"))
	key, err := os.ReadFile(filepath.Join("testdata", "keys", "builder.pub"))
	if err != nil {
		f.Fatal(err)
	}
	// Key files resolve to the one test key; nothing else is read.
	readFile := func(path string) ([]byte, error) {
		if filepath.Base(path) == "key.pub" {
			return key, nil
		}
		return nil, os.ErrNotExist
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := parsePolicy(data, ".", readFile)
		if err != nil {
			if !errors.Is(err, ErrInvalidPolicy) {
				t.Fatalf("refusal is not ErrInvalidPolicy: %v", err)
			}
			return
		}
		if len(p.identities) == 0 {
			t.Fatal("accepted a policy that trusts nobody")
		}
		if p.maxAge < 0 {
			t.Fatalf("accepted maxAge %v", p.maxAge)
		}
		ids := p.identities
		if rv := p.rebuildVerdicts; rv != nil {
			if rv.count < 1 || len(rv.identities) == 0 {
				t.Fatalf("accepted requireReproduced %+v", rv)
			}
			ids = append(ids[:len(ids):len(ids)], rv.identities...)
		}
		for _, id := range ids {
			if id.cert == nil && id.publicKey == nil {
				t.Fatalf("identity on line %d is neither a certificate identity nor a key", id.line)
			}
			for _, re := range []string{id.issuerRegExp, id.subjectRegExp} {
				if _, err := regexp.Compile(re); err != nil {
					t.Fatalf("identity on line %d: accepted %q, which is no regular expression on its own: %v", id.line, re, err)
				}
			}
		}
		for _, pat := range append(append([]pattern(nil), p.sourceRepositories...), p.builderIDs...) {
			if re, ok := strings.CutPrefix(pat.raw, "regexp:"); ok {
				if _, err := regexp.Compile(re); err != nil {
					t.Fatalf("accepted pattern %q, which is no regular expression on its own: %v", pat.raw, err)
				}
			}
			_ = pat.match(pat.raw)
		}
	})
}

// FuzzStatement: statements are read by attest inspect and by rebuild
// without being verified first (Describe, then ParseStatement). Parsing a
// statement and its provenance or verdict predicate never panics.
func FuzzStatement(f *testing.F) {
	f.Add(provenanceDoc(fuzzDigest))
	f.Add(verdictDoc(fuzzDigest, []byte("p"), "hint"))
	f.Add([]byte(`{"_type":"https://in-toto.io/Statement/v1","subject":[{"digest":{"sha256":"00"}}],"predicateType":"x","predicate":null}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		st, err := ParseStatement(data)
		if err != nil {
			return
		}
		_ = SubjectHasDigest(st, fuzzDigest)
		_ = subjectDigests(st)
		if p, err := ProvenancePredicate(st); err == nil && p.GetRunDetails().GetBuilder().GetId() == "" {
			t.Fatal("a provenance predicate without a builder id passed validation")
		}
		if v, err := ParseVerdict(st); err == nil && !sha256Digest.MatchString(v.RebuiltDigest) {
			t.Fatalf("a verdict with rebuiltDigest %q passed", v.RebuiltDigest)
		}
		// The envelope decoding twinforge uses on payloads.
		_, _ = decodeBase64(base64.StdEncoding.EncodeToString(data))
	})
}

// TestFuzzSeedsVerify keeps the fuzz targets honest: their good seeds are
// accepted, so their checks of what is accepted run.
func TestFuzzSeedsVerify(t *testing.T) {
	builder, rebuilder := loadTestKey(t, "builder"), loadTestKey(t, "rebuilder")
	prov := provenanceDoc(fuzzDigest)
	provBundle := builder.signDSSE(t, PayloadType, prov)
	if _, err := Verify(context.Background(), Request{Digest: fuzzDigest, Provenance: provBundle, Policy: fuzzPolicy(t, builder, nil), Now: fuzzNow}); err != nil {
		t.Fatalf("the provenance seed: %v", err)
	}
	if _, ok := builder.verifiesDSSE(bundleJSON(t, provBundle)); !ok {
		t.Fatal("the independent DSSE check refuses the provenance seed")
	}
	verdict := rebuilder.signDSSE(t, PayloadType, verdictDoc(fuzzDigest, prov, builder.hint))
	res, err := Verify(context.Background(), Request{Digest: fuzzDigest, Provenance: provBundle, Verdicts: []*bundle.Bundle{verdict}, Policy: fuzzPolicy(t, builder, &rebuilder), Now: fuzzNow})
	if err != nil || len(res.ReproducedBy) != 1 {
		t.Fatalf("the verdict seed: %v", err)
	}
}

// dpkgCompare asks dpkg itself how two versions order: -1, 0 or 1, and
// false when dpkg refuses either version or is not installed.
func dpkgCompare(a, b string) (int, bool) {
	rel := func(op string) (bool, bool) {
		cmd := exec.Command("dpkg", "--compare-versions", a, op, b)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err := cmd.Run()
		if stderr.Len() > 0 {
			return false, false // a warning: dpkg's own syntax check
		}
		var exit *exec.ExitError
		switch {
		case err == nil:
			return true, true
		case errors.As(err, &exit) && exit.ExitCode() == 1:
			return false, true
		}
		return false, false
	}
	lt, ok := rel("lt")
	if !ok {
		return 0, false
	}
	if lt {
		return -1, true
	}
	eq, ok := rel("eq")
	if !ok {
		return 0, false
	}
	if eq {
		return 0, true
	}
	return 1, true
}

// FuzzDebianVersion: deniedPackages ranges compare Debian (and every
// non-Go) version with a port of dpkg's ordering; a wrong answer lets a
// denied version through. It orders every pair of versions as dpkg
// itself does, and is antisymmetric.
func FuzzDebianVersion(f *testing.F) {
	if _, err := exec.LookPath("dpkg"); err != nil {
		f.Skip("dpkg, the reference, is not installed")
	}
	for _, p := range [][2]string{
		{"1.1.1n-0+deb11u1", "1.1.1k-1"}, {"1.0~rc1", "1.0"}, {"1:0.9", "2.0"}, {"2.30-1", "2.30-1ubuntu1"},
		{"1.0", "1.0-0"}, {"0001.2", "1.2"}, {"1.2a", "1.2+"}, {"3.0.11-1~deb12u2", "3.0.11-1"}, {"7", "7.0"},
		{"1.2.3-", "1.2.3"}, {"a:1", "1"}, {"1.0.", "1.0"},
	} {
		f.Add(p[0], p[1])
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		got := debCompare(a, b)
		if back := debCompare(b, a); back != -got {
			t.Fatalf("debCompare(%q, %q) = %d but debCompare(%q, %q) = %d", a, b, got, b, a, back)
		}
		if len(a) > 40 || len(b) > 40 {
			return
		}
		want, ok := dpkgCompare(a, b)
		if ok && got != want {
			t.Fatalf("%q vs %q: debCompare says %d, dpkg says %d", a, b, got, want)
		}
	})
}
