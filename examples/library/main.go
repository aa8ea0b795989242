// Command library is twinforge used as a library, without the CLI: it
// builds a locked build context and proves it with an independent rebuild
// (package rebuild/pipeline), signs the provenance and the image with a
// key, then finds the evidence beside the OCI layout and verifies it
// against a policy that trusts that key (package attest/evidence), as an
// admission webhook or an auditor would.
//
//	go run ./examples/library -key attest/testdata/keys/cosign.key \
//	    -pub attest/testdata/keys/cosign.pub -o out/library examples/files
//
// The key's password is read from COSIGN_PASSWORD. buildkitd and runc are
// looked up beside the program and on PATH (make deps puts buildkitd in
// bin/).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"

	"github.com/twinforge/twinforge/attest"
	"github.com/twinforge/twinforge/attest/evidence"
	"github.com/twinforge/twinforge/attest/verify"
	"github.com/twinforge/twinforge/isolation"
	"github.com/twinforge/twinforge/rebuild"
	"github.com/twinforge/twinforge/rebuild/pipeline"
)

func main() {
	key := flag.String("key", "", "private key `FILE` to sign with (cosign format)")
	pub := flag.String("pub", "", "public key `FILE` the policy trusts")
	out := flag.String("o", "out/library", "OCI layout `DIR` to write")
	buildkitd := flag.String("buildkitd", "buildkitd", "buildkitd program")
	state := flag.String("state-dir", isolation.DefaultStateDir(), "where the private daemons keep their state")
	flag.Parse()
	if flag.NArg() != 1 || *key == "" || *pub == "" {
		fmt.Fprintln(os.Stderr, "usage: library -key FILE -pub FILE [-o DIR] CONTEXT")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, flag.Arg(0), *out, *key, *pub, *buildkitd, *state); err != nil {
		fmt.Fprintln(os.Stderr, "library:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, contextDir, layout, key, pub, buildkitd, state string) error {
	signer, err := attest.NewSigner(ctx, attest.SignerConfig{KeyPath: key, KeyPassword: []byte(os.Getenv("COSIGN_PASSWORD"))})
	if err != nil {
		return err
	}
	// Build, rebuild on a second daemon, attest and sign: one call.
	res, err := pipeline.Run(ctx, pipeline.Request{
		ContextDir: contextDir,
		OCILayout:  layout,
		Daemons:    rebuild.Daemons{StateDir: state, Options: []isolation.Option{isolation.WithBuildkitd(buildkitd)}},
		Signer:     signer,
	})
	if err != nil {
		return err
	}
	fmt.Printf("built    %s (%s)\n", res.Build.Digest, res.Reproduction())

	// Verify what was stored, as anyone downstream would.
	policy, err := verify.ParsePolicy([]byte(fmt.Sprintf(`apiVersion: twinforge.dev/v2
kind: Policy
identities:
  - publicKey: %q
requireSignedTimestamp: false
requireTransparencyLog: false
`, pub)))
	if err != nil {
		return err
	}
	ev, err := evidence.Layout(layout).Evidence(ctx, "")
	if err != nil {
		return err
	}
	verified, err := ev.Verify(ctx, nil, policy)
	if err != nil {
		return err
	}
	fmt.Printf("verified %s signed by %s, reproduced %v\n", verified.Digest, verified.Identity, verified.Reproduced)
	return nil
}
