package vouch

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/moby/buildkit/client"
	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/root"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/twinforge/twinforge/attest"
	"github.com/twinforge/twinforge/attest/verify"
	"github.com/twinforge/twinforge/builder"
	"github.com/twinforge/twinforge/hermetic"
	"github.com/twinforge/twinforge/isolation"
	"github.com/twinforge/twinforge/rebuild"
	"github.com/twinforge/twinforge/rebuild/audit"
)

// server is the rebuild process.
type server struct {
	cfg     Config
	log     *slog.Logger
	trusted root.TrustedMaterial
	keySign attest.Signer // a key signer, loaded at start

	outMu sync.Mutex
	out   io.Writer

	built *built
}

// built is what the process rebuilt, kept for Vouch.
type built struct {
	lock   *hermetic.Lock
	result *builder.Result
	req    builder.Request
}

// Serve is the rebuild process (`twinforge rebuilder`): it reads its
// Config from in, checks it (the lock, the signing credentials), then
// serves the parent's requests until in ends or ctx is cancelled.
func Serve(ctx context.Context, in io.Reader, out io.Writer, log *slog.Logger) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &server{out: out, log: log}
	lines := make(chan []byte)
	readErr := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(in)
		sc.Buffer(make([]byte, 64*1024), 64*1024*1024)
		for sc.Scan() {
			lines <- append([]byte(nil), sc.Bytes()...)
		}
		readErr <- sc.Err()
	}()
	first := true
	for {
		var line []byte
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-readErr:
			return err
		case line = <-lines:
		}
		var m message
		if err := json.Unmarshal(line, &m); err != nil {
			return fmt.Errorf("rebuilder: reading a request: %w", err)
		}
		var err error
		switch {
		case first && m.Config != nil:
			first = false
			if err = s.start(ctx, *m.Config); err == nil {
				s.send(message{Ready: true})
				continue
			}
		case first:
			err = errors.New("the first message is the configuration")
		case m.Build != nil:
			err = s.build(ctx, *m.Build)
		case m.Vouch != nil:
			err = s.vouch(ctx, *m.Vouch)
		default:
			err = errors.New("an empty request")
		}
		if err != nil {
			s.send(message{Error: toWire(err)})
		}
	}
}

func (s *server) send(m message) {
	data, err := json.Marshal(m)
	if err != nil {
		data, _ = json.Marshal(message{Error: &wireError{Message: "encoding a reply: " + err.Error()}})
	}
	s.outMu.Lock()
	defer s.outMu.Unlock()
	_, _ = s.out.Write(append(data, '\n'))
}

func (s *server) start(ctx context.Context, cfg Config) error {
	if err := cfg.Signer.validate(); err != nil {
		return fmt.Errorf("%w: %w", builder.ErrInvalidRequest, err)
	}
	if cfg.RebuilderID == "" {
		cfg.RebuilderID = DefaultRebuilderID
	}
	if cfg.StateDir == "" {
		cfg.StateDir = isolation.DefaultStateDir()
	}
	s.cfg = cfg
	if cfg.TrustedRoot != "" {
		tr, err := verify.LoadTrustedRoot(cfg.TrustedRoot)
		if err != nil {
			return err
		}
		s.trusted = tr
	}
	if cfg.Signer.KeyPath != "" {
		var password []byte
		if f := cfg.Signer.KeyPasswordFile; f != "" {
			b, err := os.ReadFile(f)
			if err != nil {
				return fmt.Errorf("the rebuilder's key password: %w", err)
			}
			password = []byte(strings.TrimRight(string(b), "\r\n"))
		}
		signer, err := attest.NewSigner(ctx, attest.SignerConfig{KeyPath: cfg.Signer.KeyPath, KeyPassword: password, TSAURL: cfg.Signer.TSAURL, RekorURL: cfg.Signer.RekorURL, TrustedRoot: s.trustedRoot()})
		if err != nil {
			return fmt.Errorf("the rebuilder's signer: %w", err)
		}
		s.keySign = signer
	} else if _, err := os.Stat(cfg.Signer.IDTokenFile); err != nil {
		return fmt.Errorf("the rebuilder's identity token: %w", err)
	}
	return nil
}

func (s *server) trustedRoot() root.TrustedMaterial {
	if s.trusted == nil {
		return nil
	}
	return s.trusted
}

// build rebuilds the context the process was started for, from its own
// reading of the lock, on the worker it dials itself.
func (s *server) build(ctx context.Context, br buildRequest) error {
	s.built = nil
	l, err := hermetic.Load(s.cfg.LockPath)
	if err != nil {
		return fmt.Errorf("%w: lock %s: %w", builder.ErrRefused, s.cfg.LockPath, err)
	}
	req, err := builder.FromLock(ctx, builder.LockedInput{
		Lock: l, LockPath: s.cfg.LockPath, ContextDir: s.cfg.ContextDir, ImageCache: filepath.Join(s.cfg.StateDir, "images"),
	})
	if err != nil {
		return err
	}
	req.OCILayout, req.ImageName, req.Hostname, req.Ulimit = br.OCILayout, br.ImageName, br.Hostname, br.Ulimit
	d, err := s.cfg.Worker.Dial(ctx)
	if err != nil {
		return fmt.Errorf("the rebuild worker: %w", err)
	}
	defer d.Close()
	progress := make(chan *client.SolveStatus)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for st := range progress {
			s.send(message{Status: st})
		}
	}()
	req.Progress = progress
	res, err := builder.New(d).Build(ctx, req)
	<-done
	if err != nil {
		return err
	}
	s.log.Info("rebuilt", "digest", res.Digest, "worker", res.Builder.Identity, "node", res.Builder.Node)
	s.built = &built{lock: l, result: res, req: req}
	s.send(message{Result: res})
	return nil
}

// vouch verifies the builder's provenance of what was rebuilt and signs
// the verdict.
func (s *server) vouch(ctx context.Context, vr vouchRequest) error {
	b := s.built
	if b == nil {
		return fmt.Errorf("%w: nothing was rebuilt", ErrNotVouched)
	}
	notVouched := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrNotVouched, fmt.Sprintf(format, args...))
	}
	if err := isolation.CheckSeparate(vr.BuildWorker, b.result.Builder); err != nil {
		return notVouched("%v", err)
	}
	prov, err := parseBundle(vr.Provenance)
	if err != nil {
		return notVouched("the provenance: %v", err)
	}
	var img *bundle.Bundle
	if len(vr.Image) > 0 {
		if img, err = parseBundle(vr.Image); err != nil {
			return notVouched("the image signature: %v", err)
		}
	}
	policy, err := builderPolicy(vr)
	if err != nil {
		return notVouched("%v", err)
	}
	digest := b.result.Digest
	verified, err := verify.Verify(ctx, verify.Request{Digest: digest, Provenance: prov, Image: img, TrustedRoot: s.trustedRoot(), Policy: policy})
	if err != nil {
		return notVouched("the provenance of %s does not verify: %v", digest, err)
	}
	in, err := audit.FromProvenance(verified.Statement, digest)
	if err != nil {
		return notVouched("%v", err)
	}
	if err := sameInputs(in, b.lock); err != nil {
		return notVouched("the provenance describes another build than the one rebuilt: %v", err)
	}
	info, err := verify.Describe(prov)
	if err != nil {
		return notVouched("%v", err)
	}
	src, err := hermetic.CurrentSource(ctx, s.cfg.ContextDir, b.lock.Source.Digest)
	if err != nil {
		return err
	}
	st, err := attest.RebuildVerdict(attest.VerdictInfo{
		Subject:           attest.Subject{Name: in.SubjectName, Digest: digest},
		RebuiltDigest:     digest,
		RebuilderID:       s.cfg.RebuilderID,
		Rebuilder:         rebuild.AttestedBuilder(b.result.Builder),
		Variations:        variations(b),
		Provenance:        verified.Statement,
		ProvenancePayload: info.Payload,
		ProvenanceSigner:  verified.Identity,
		Checkout:          verify.SourceCheckout{Kind: src.Kind, Commit: src.Commit, Tree: src.Tree, ContextDigest: b.lock.Source.Digest},
		RebuiltOn:         time.Now(),
	})
	if err != nil {
		return err
	}
	statement, err := attest.MarshalStatement(st)
	if err != nil {
		return err
	}
	signer, err := s.signer(ctx)
	if err != nil {
		return err
	}
	verdict, err := signer.SignStatement(ctx, statement)
	if err != nil {
		return fmt.Errorf("signing the verdict: %w", err)
	}
	data, err := protojson.Marshal(verdict.Bundle)
	if err != nil {
		return err
	}
	s.log.Info("vouched", "digest", digest, "provenance signer", verified.Identity.String())
	s.send(message{Verdict: data})
	return nil
}

// signer is the key signer loaded at start, or a keyless one made now,
// with the identity token as the file holds it now.
func (s *server) signer(ctx context.Context) (attest.Signer, error) {
	if s.keySign != nil {
		return s.keySign, nil
	}
	f := s.cfg.Signer
	signer, err := attest.NewSigner(ctx, attest.SignerConfig{IDTokenFile: f.IDTokenFile, FulcioURL: f.FulcioURL, TSAURL: f.TSAURL, RekorURL: f.RekorURL, TrustedRoot: s.trustedRoot()})
	if err != nil {
		return nil, fmt.Errorf("the rebuilder's signer: %w", err)
	}
	return signer, nil
}

func parseBundle(data []byte) (*bundle.Bundle, error) {
	b := &bundle.Bundle{}
	if err := b.UnmarshalJSON(data); err != nil {
		return nil, err
	}
	return b, nil
}

// builderPolicy verifies the provenance's signature by the identity the
// parent names: whoever signed it is recorded in the verdict, verified.
// Timestamps and log entries are verified when present; requiring them
// is the policy of whoever verifies the image.
func builderPolicy(vr vouchRequest) (*verify.Policy, error) {
	var id string
	switch {
	case vr.BuilderKey != "":
		id = fmt.Sprintf("  - publicKey: %q\n", vr.BuilderKey)
	case vr.BuilderIssuer != "" && vr.BuilderSubject != "":
		id = fmt.Sprintf("  - issuer: %q\n    subject: %q\n", vr.BuilderIssuer, vr.BuilderSubject)
	default:
		return nil, errors.New("no builder identity to verify the provenance with")
	}
	return verify.ParsePolicy([]byte("apiVersion: " + verify.PolicyAPIVersion + "\nkind: " + verify.PolicyKind +
		"\nidentities:\n" + id + "requireSignedTimestamp: false\nrequireTransparencyLog: false\n"))
}

// sameInputs checks that a provenance records the inputs of the lock the
// process rebuilt from.
func sameInputs(in *audit.Inputs, l *hermetic.Lock) error {
	var diffs []string
	check := func(what, prov, lock string) {
		if prov != lock {
			diffs = append(diffs, fmt.Sprintf("%s %q, not %q", what, prov, lock))
		}
	}
	check("context digest", in.Source.Digest, l.Source.Digest)
	check("Dockerfile", in.Dockerfile.Path, l.Dockerfile.Path)
	check("Dockerfile digest", in.Dockerfile.Digest, l.Dockerfile.Digest)
	check("target", in.Target, l.Target)
	check("platform", in.Platform, l.Platform)
	check("SOURCE_DATE_EPOCH", fmt.Sprint(in.SourceDateEpoch), fmt.Sprint(l.SourceDateEpoch))
	if !maps.Equal(in.BuildArgs, l.BuildArgs) && (len(in.BuildArgs) > 0 || len(l.BuildArgs) > 0) {
		diffs = append(diffs, "build args")
	}
	images := func(imgs []hermetic.Image) []string {
		var out []string
		for _, i := range imgs {
			out = append(out, i.Name+"@"+i.Digest)
		}
		slices.Sort(out)
		return out
	}
	if a, b := images(in.Images), images(l.Images); !slices.Equal(a, b) {
		diffs = append(diffs, fmt.Sprintf("base images %v, not %v", a, b))
	}
	if len(diffs) > 0 {
		return errors.New(strings.Join(diffs, "; "))
	}
	return nil
}

// variations are how the rebuild was varied, as a verdict records them.
func variations(b *built) []string {
	var out []string
	add := func(k, v string) {
		if v != "" {
			out = append(out, k+"="+v)
		}
	}
	add("hostname", b.req.Hostname)
	add("ulimit", b.req.Ulimit)
	add("snapshotter", b.result.Builder.Snapshotter)
	add("cpuset", b.result.Builder.CPUSet)
	add("worker", b.result.Builder.Identity)
	add("node", b.result.Builder.Node)
	return out
}
