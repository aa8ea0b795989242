package pipeline_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/twinforge/twinforge/attest/evidence"
	"github.com/twinforge/twinforge/attest/verify"
	"github.com/twinforge/twinforge/internal/testenv"
	"github.com/twinforge/twinforge/rebuild"
	"github.com/twinforge/twinforge/rebuild/pipeline"
	"github.com/twinforge/twinforge/rebuild/vouch"
)

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// twinforge builds the CLI once, for the rebuild process it runs.
func twinforge(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "twinforge-pipeline-")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "twinforge")
		out, err := exec.Command("go", "build", "-o", binPath, filepath.Join(testenv.RepoRoot(t), "cmd", "twinforge")).CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("%v: %s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// newKey writes a fresh ECDSA key pair: the private key (PKCS #8 PEM) and
// its public key.
func newKey(t *testing.T, dir, name string) (priv, pub string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(k)
	pubDER, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
	priv, pub = filepath.Join(dir, name+".key"), filepath.Join(dir, name+".pub")
	if err := os.WriteFile(priv, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pub, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), 0o644); err != nil {
		t.Fatal(err)
	}
	return priv, pub
}

// spy is a program that records what the rebuild process is started with
// (arguments, environment, open files, everything sent on its stdin) and
// then runs twinforge.
func spy(t *testing.T, dir string) string {
	t.Helper()
	script := fmt.Sprintf(`#!/bin/sh
echo "$@" > %[1]s/args
env > %[1]s/env
ls -l /proc/$$/fd > %[1]s/fds
tee %[1]s/stdin | exec %[2]s "$@"
`, dir, twinforge(t))
	p := filepath.Join(dir, "spy.sh")
	if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// The rebuild side signs its own verdict, from a process of its own that
// is never given the builder's credentials, with a key of its own: the
// verdict verifies with the rebuilder's key, satisfies a policy naming the
// rebuilder, and no policy that names only the builder accepts it.
func TestRebuilderVouchesForItself(t *testing.T) {
	pool, a, b := twoHosts(t)
	testenv.BaseImages(t)
	keys := filepath.Join(testenv.RepoRoot(t), "attest", "testdata", "keys")
	builderKey, builderPub := filepath.Join(keys, "cosign.key"), filepath.Join(keys, "cosign.pub")
	t.Setenv("COSIGN_PASSWORD", "twinforge-test")
	t.Setenv("SIGSTORE_ID_TOKEN", "the-builders-token")
	rebuilderKey, rebuilderPub := newKey(t, t.TempDir(), "rebuilder")
	seen := t.TempDir()
	layout := filepath.Join(t.TempDir(), "img")

	res, err := pipeline.Run(context.Background(), pipeline.Request{
		ContextDir: filepath.Join(testenv.RepoRoot(t), "examples", "files"),
		OCILayout:  layout,
		Daemons: rebuild.Daemons{StateDir: t.TempDir(), Workers: &rebuild.Workers{
			Build: a.Addr, BuildTLS: pool.TLS(a), Rebuild: b.Addr, RebuildTLS: pool.TLS(b),
		}},
		Signer: keySigner(t),
		Vouch: &pipeline.Vouch{
			Signer:  vouch.SignerFiles{KeyPath: rebuilderKey},
			Program: spy(t, seen),
			Stderr:  testenv.LogWriter(t),
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Verdict == nil || len(res.VerdictFiles) != 1 {
		t.Fatalf("no verdict: %+v", res)
	}
	if res.RebuilderSigner.PublicKey == "" || res.RebuilderSigner == res.Signer {
		t.Errorf("verdict signed by %v, the build by %v", res.RebuilderSigner, res.Signer)
	}

	// What the rebuild process was given: nothing of the builder's.
	for _, f := range []string{"args", "env", "stdin"} {
		data, err := os.ReadFile(filepath.Join(seen, f))
		if err != nil {
			t.Fatal(err)
		}
		for _, secret := range []string{"twinforge-test", "the-builders-token", builderKey, "COSIGN_PASSWORD", "SIGSTORE_ID_TOKEN"} {
			if strings.Contains(string(data), secret) {
				t.Errorf("the rebuild process's %s holds %q", f, secret)
			}
		}
	}
	// Its open files are its pipes and what the spy itself opened.
	fds, _ := os.ReadFile(filepath.Join(seen, "fds"))
	for _, line := range strings.Split(string(fds), "\n") {
		_, target, ok := strings.Cut(line, " -> ")
		if ok && !strings.HasPrefix(target, "pipe:") && target != "/dev/null" && !strings.HasPrefix(target, seen) {
			t.Errorf("the rebuild process inherited %s", line)
		}
	}

	// The verdict is the rebuilder's: it verifies with its key, against a
	// policy that requires it, and names both workers' machines.
	verdictDesc, err := verify.Describe(res.Verdict)
	if err != nil {
		t.Fatal(err)
	}
	pred, err := verify.ParseVerdict(verdictDesc.Statement)
	if err != nil {
		t.Fatal(err)
	}
	if pred.Rebuilder.ID != vouch.DefaultRebuilderID || !contains(pred.Rebuilder.Variations, "node=host-b") || !contains(pred.Rebuilder.Variations, "worker="+b.Identity) {
		t.Errorf("verdict rebuilder: %+v", pred.Rebuilder)
	}
	policy := func(rebuilderKeys ...string) *verify.Policy {
		doc := fmt.Sprintf("apiVersion: %s\nkind: Policy\nidentities:\n  - publicKey: %q\nrequireSignedTimestamp: false\nrequireTransparencyLog: false\n", verify.PolicyAPIVersion, builderPub)
		doc += "requireReproduced:\n  by:\n"
		for _, k := range rebuilderKeys {
			doc += fmt.Sprintf("    - publicKey: %q\n", k)
		}
		p, err := verify.ParsePolicy([]byte(doc))
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	ev, err := evidence.Layout(layout).Evidence(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	verified, err := ev.Verify(context.Background(), nil, policy(rebuilderPub))
	if err != nil {
		t.Fatalf("a policy naming the rebuilder refused the image: %v", err)
	}
	if len(verified.ReproducedBy) != 1 || verified.ReproducedBy[0].PublicKey != res.RebuilderSigner.PublicKey {
		t.Errorf("reproduced by %v, want the rebuilder's key", verified.ReproducedBy)
	}
	_, err = ev.Verify(context.Background(), nil, policy(builderPub))
	var ve *verify.VerificationError
	if !errors.As(err, &ve) || !strings.Contains(err.Error(), "0 of the 1 rebuild verdicts required") {
		t.Errorf("a policy naming only the builder as rebuilder: %v, want a refusal", err)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
