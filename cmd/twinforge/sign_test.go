package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twinforge/twinforge/internal/regtest"
	"github.com/twinforge/twinforge/internal/sigstack"
	"github.com/twinforge/twinforge/internal/testenv"
)

// signEnv is a real local Sigstore stack and registry for the CLI.
type signEnv struct {
	stack    *sigstack.Stack
	registry *regtest.Registry
	token    string
	flags    []string
}

func newSignEnv(t *testing.T) *signEnv {
	t.Helper()
	testenv.NeedDaemon(t)
	stack, err := sigstack.Start(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stack.Close() })
	token, err := stack.IDToken(context.Background(), sigstack.Claims{Subject: "builder@twinforge.test", Email: "builder@twinforge.test"})
	if err != nil {
		t.Fatal(err)
	}
	return &signEnv{
		stack:    stack,
		registry: regtest.StartDistribution(t),
		token:    token,
		flags: []string{
			"--fulcio-url", stack.FulcioURL(), "--tsa-url", stack.TimestampURL(),
			"--rekor-url", stack.RekorURL(), "--trusted-root", filepath.Join(stack.Dir(), "trusted_root.json"),
		},
	}
}

func (e *signEnv) policy(t *testing.T, subject string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "policy.yaml")
	write(t, p, "apiVersion: twinforge.dev/v2\nkind: Policy\nidentities:\n  - issuer: "+e.stack.OIDCIssuer()+"\n    subject: "+subject+
		"\nbuilderIDs:\n  - https://twinforge.dev/builders/local/v1\nmaxAge: 1h\n")
	return p
}

func TestKeylessSignPushVerify(t *testing.T) {
	e := newSignEnv(t)
	c := newCLI(t)
	ctx := c.context("files-small")
	c.lock(ctx)
	out := filepath.Join(t.TempDir(), "img")
	ref := e.registry.Host + "/team/files:1.0"
	r := c.must(append(append([]string{"build", "--progress", "quiet", "--output", "json", "--oci-layout", out,
		"--sign", "keyless", "--identity-token", e.token, "--push", ref, "--insecure"}, e.flags...), ctx)...)
	var got struct {
		Digest       string
		Reproducible bool
		Signature    struct {
			Method, Identity string
			Bundles          []string
		}
		Push struct {
			Digest, Tag   string
			Referrers     []struct{ Digest, ArtifactType string }
			ReferrersMode string
		}
	}
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatalf("%v\n%s", err, r.stdout)
	}
	if !got.Reproducible || got.Signature.Method != "keyless" || !strings.Contains(got.Signature.Identity, "builder@twinforge.test") ||
		len(got.Signature.Bundles) != 2 || got.Push.Digest != got.Digest || got.Push.Tag != "1.0" || len(got.Push.Referrers) != 2 {
		t.Fatalf("incomplete signed push: %+v", got)
	}
	// An outside tool reads back what was pushed.
	crane := exec.Command(testenv.Binary(t, "crane"), "digest", "--insecure", ref)
	if b, err := crane.Output(); err != nil || strings.TrimSpace(string(b)) != got.Digest {
		t.Fatalf("crane digest: %s, %v", b, err)
	}

	policy := e.policy(t, "builder@twinforge.test")
	root := filepath.Join(e.stack.Dir(), "trusted_root.json")
	v := c.must("verify", "--policy", policy, "--trusted-root", root, out)
	assertContains(t, "verify", v.stdout, got.Digest, "builder@twinforge.test", "reproduced")

	refusals := []struct {
		name   string
		policy string
		edit   func(t *testing.T, layout string)
		want   []string
	}{
		{"wrong identity", e.policy(t, "mallory@twinforge.test"), nil, []string{"identity", "mallory@twinforge.test"}},
		{"tampered statement", policy, func(t *testing.T, layout string) {
			p := filepath.Join(layout, "attestations", "provenance.sigstore.json")
			b := readFile(t, p)
			var bundle map[string]any
			if err := json.Unmarshal([]byte(b), &bundle); err != nil {
				t.Fatal(err)
			}
			env := bundle["dsseEnvelope"].(map[string]any)
			payload := env["payload"].(string)
			env["payload"] = payload[:len(payload)-8] + "AAAAAAA="
			nb, _ := json.Marshal(bundle)
			write(t, p, string(nb))
		}, []string{"refused"}},
		{"unsigned image", policy, func(t *testing.T, layout string) {
			os.RemoveAll(filepath.Join(layout, "attestations"))
		}, []string{"not signed"}},
	}
	for _, tt := range refusals {
		t.Run(tt.name, func(t *testing.T) {
			layout := out
			if tt.edit != nil {
				layout = filepath.Join(t.TempDir(), "copy")
				if err := exec.Command("cp", "-a", out, layout).Run(); err != nil {
					t.Fatal(err)
				}
				tt.edit(t, layout)
			}
			r := c.run("verify", "--policy", tt.policy, "--trusted-root", root, layout)
			if r.code != exitRefused {
				t.Fatalf("exit %d, want 4\n%s%s", r.code, r.stdout, r.stderr)
			}
			assertContains(t, "stderr", r.stderr, tt.want...)
		})
	}
}

func TestSigningFailuresWriteNothing(t *testing.T) {
	e := newSignEnv(t)
	c := newCLI(t)
	expired, err := e.stack.IDToken(context.Background(), sigstack.Claims{Subject: "builder@twinforge.test", Email: "builder@twinforge.test", Expiry: -time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	key := filepath.Join(testenv.RepoRoot(t), "attest", "testdata", "keys", "cosign.key")
	tests := []struct {
		name string
		args []string
		env  string
		code int
		want []string
	}{
		{"expired token", append([]string{"--sign", "keyless", "--identity-token", expired}, e.flags...), "", exitFailure, []string{"expired"}},
		{"Fulcio unreachable", []string{"--sign", "keyless", "--identity-token", e.token, "--fulcio-url", "http://127.0.0.1:1", "--tsa-url", e.stack.TimestampURL()}, "", exitFailure, []string{"Fulcio", "127.0.0.1:1"}},
		{"wrong key password", []string{"--sign", "key=" + key}, "wrong-password", exitFailure, []string{"password"}},
		{"push without a signing choice", []string{"--push", e.registry.Host + "/team/x:1", "--insecure"}, "", exitUsage, []string{"--sign"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := c.context("files-small")
			c.lock(ctx)
			out := filepath.Join(t.TempDir(), "img")
			os.Setenv("COSIGN_PASSWORD", tt.env)
			defer os.Unsetenv("COSIGN_PASSWORD")
			r := c.run(append(append([]string{"build", "--no-rebuild", "--progress", "quiet", "--oci-layout", out}, tt.args...), ctx)...)
			if r.code != tt.code {
				t.Fatalf("exit %d, want %d\n%s", r.code, tt.code, r.stderr)
			}
			assertContains(t, "stderr", r.stderr, tt.want...)
			if _, err := os.Stat(filepath.Join(out, "attestations")); err == nil {
				t.Error("bundles written by a failed signing")
			}
			if tags := e.registry.Tags(t, "team/x"); len(tags) > 0 {
				t.Errorf("pushed: %v", tags)
			}
		})
	}
}

func TestKeySigning(t *testing.T) {
	testenv.NeedDaemon(t)
	c := newCLI(t)
	ctx := c.context("files-small")
	c.lock(ctx)
	out := filepath.Join(t.TempDir(), "img")
	keys := filepath.Join(testenv.RepoRoot(t), "attest", "testdata", "keys")
	os.Setenv("COSIGN_PASSWORD", "twinforge-test")
	defer os.Unsetenv("COSIGN_PASSWORD")
	c.must("build", "--progress", "quiet", "--sign", "key="+filepath.Join(keys, "cosign.key"), "--tsa-url", "", "--oci-layout", out, ctx)
	policy := filepath.Join(t.TempDir(), "policy.yaml")
	write(t, policy, "apiVersion: twinforge.dev/v2\nkind: Policy\nidentities:\n  - publicKey: "+filepath.Join(keys, "cosign.pub")+
		"\nrequireSignedTimestamp: false\nrequireTransparencyLog: false\n")
	c.must("verify", "--policy", policy, out)
	other := filepath.Join(t.TempDir(), "other.yaml")
	write(t, other, strings.Replace(readFile(t, policy), "cosign.pub", "release.pub", 1))
	if r := c.run("verify", "--policy", other, out); r.code != exitRefused {
		t.Fatalf("verify with another key: exit %d\n%s", r.code, r.stderr)
	}
}

// What twinforge pushes and replicates, cosign verifies in every registry
// (with and without the referrers API) and crane reads back by digest.
func TestReplicatedCopiesVerifyWithCosign(t *testing.T) {
	e := newSignEnv(t)
	c := newCLI(t)
	ctx := c.context("files-small")
	c.lock(ctx)
	src := e.registry.Host + "/team/files"
	r := c.must(append(append([]string{"build", "--progress", "quiet", "--output", "json", "--sign", "keyless",
		"--identity-token", e.token, "--push", src + ":1.0", "--insecure"}, e.flags...), ctx)...)
	var built struct{ Digest string }
	if err := json.Unmarshal([]byte(r.stdout), &built); err != nil {
		t.Fatal(err)
	}
	dests := []string{regtest.StartReferrers(t).Host + "/eu/files", regtest.StartDistribution(t).Host + "/us/files"}
	rep := c.must(append([]string{"replicate", "--insecure", "--output", "json", src + "@" + built.Digest}, dests...)...)
	assertContains(t, "replicate", rep.stdout, built.Digest)
	cosign := testenv.Binary(t, "cosign")
	root := filepath.Join(e.stack.Dir(), "trusted_root.json")
	for _, repo := range append([]string{src}, dests...) {
		ref := repo + "@" + built.Digest
		if b, err := exec.Command(testenv.Binary(t, "crane"), "digest", "--insecure", ref).Output(); err != nil || strings.TrimSpace(string(b)) != built.Digest {
			t.Errorf("crane digest %s: %s %v", ref, b, err)
		}
		common := []string{"--new-bundle-format", "--trusted-root", root, "--certificate-identity", "builder@twinforge.test",
			"--certificate-oidc-issuer", e.stack.OIDCIssuer(), "--insecure-ignore-sct", "--use-signed-timestamps", "--allow-insecure-registry"}
		for _, verb := range [][]string{{"verify"}, {"verify-attestation", "--type", "slsaprovenance1"}} {
			args := append(append(append([]string{}, verb...), common...), ref)
			if out, err := exec.Command(cosign, args...).CombinedOutput(); err != nil {
				t.Errorf("cosign %s %s: %v\n%s", verb[0], ref, err, out)
			}
		}
		// The wrong identity is refused by cosign too.
		bad := append([]string{"verify"}, common...)
		bad[4] = "mallory@twinforge.test"
		if err := exec.Command(cosign, append(bad, ref)...).Run(); err == nil {
			t.Errorf("cosign accepted the wrong identity for %s", ref)
		}
	}
}
