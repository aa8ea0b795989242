package vouch

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/moby/buildkit/client"

	"github.com/twinforge/twinforge/builder"
	"github.com/twinforge/twinforge/isolation"
	"github.com/twinforge/twinforge/rebuild"
)

// The parent and the rebuild process speak JSON, one message a line, over
// the process's stdin and stdout: the parent sends the configuration, then
// one request at a time; the process answers each with status messages
// and then one result or one error.

// message is every message of the protocol; one field is set.
type message struct {
	// parent to process
	Config *Config       `json:"config,omitempty"`
	Build  *buildRequest `json:"build,omitempty"`
	Vouch  *vouchRequest `json:"vouch,omitempty"`
	// process to parent
	Status  *client.SolveStatus `json:"status,omitempty"`
	Result  *builder.Result     `json:"result,omitempty"`
	Verdict json.RawMessage     `json:"verdict,omitempty"`
	Error   *wireError          `json:"error,omitempty"`
	Ready   bool                `json:"ready,omitempty"`
}

// Config is what the rebuild process is told when it starts: where it
// rebuilds and with which credentials it signs, as paths it reads itself.
type Config struct {
	// ContextDir and LockPath are the build context and its lock: the
	// process reads and checks them itself, and rebuilds nothing else.
	ContextDir string `json:"contextDir"`
	LockPath   string `json:"lockPath"`
	// Worker is the rebuild's worker, which the process dials itself.
	Worker rebuild.RebuildWorker `json:"worker"`
	// StateDir is the process's own state directory: the base images it
	// fetches by digest go below it.
	StateDir string `json:"stateDir"`
	// Signer says how the process signs its verdict.
	Signer SignerFiles `json:"signer"`
	// RebuilderID is the rebuilder's identity in the verdict. The default
	// is DefaultRebuilderID.
	RebuilderID string `json:"rebuilderId,omitempty"`
	// TrustedRoot is the Sigstore trusted root file that verifies the
	// builder's provenance (and the process's own bundle); needed for
	// keyless builders, and for timestamps and log entries.
	TrustedRoot string `json:"trustedRoot,omitempty"`
}

// DefaultRebuilderID is the rebuilder id a verdict of a build's own
// rebuilder records when none is given.
const DefaultRebuilderID = "https://twinforge.dev/rebuilders/worker/v1"

// SignerFiles are the rebuilder's signing credentials, by path: a key
// (KeyPath, its password in KeyPasswordFile) or keyless (an identity
// token in IDTokenFile, certificates from FulcioURL), with an optional
// timestamp authority and Rekor v2 log.
type SignerFiles struct {
	KeyPath         string `json:"keyPath,omitempty"`
	KeyPasswordFile string `json:"keyPasswordFile,omitempty"`
	IDTokenFile     string `json:"idTokenFile,omitempty"`
	FulcioURL       string `json:"fulcioURL,omitempty"`
	TSAURL          string `json:"tsaURL,omitempty"`
	RekorURL        string `json:"rekorURL,omitempty"`
}

func (s SignerFiles) validate() error {
	switch {
	case s.KeyPath == "" && s.IDTokenFile == "":
		return errors.New("the rebuilder signs with a key (key=FILE) or keyless with an identity token file of its own")
	case s.KeyPath != "" && s.IDTokenFile != "":
		return errors.New("the rebuilder signs with a key or keyless, not both")
	case s.IDTokenFile != "" && s.FulcioURL == "":
		return errors.New("keyless rebuilder signing needs a Fulcio URL")
	}
	return nil
}

// buildRequest is the rebuild the process runs: the request's own parts
// come from the lock, which the process reads and checks itself; the
// parent says only where the layout goes and how the rebuild is varied.
type buildRequest struct {
	OCILayout string `json:"ociLayout"`
	ImageName string `json:"imageName,omitempty"`
	Hostname  string `json:"hostname,omitempty"`
	Ulimit    string `json:"ulimit,omitempty"`
}

// vouchRequest hands the process the builder's signed provenance (and
// image signature) of the digest it rebuilt, the builder's identity to
// verify it with (a PEM public key, or a certificate's issuer and
// subject) and the build's worker.
type vouchRequest struct {
	Provenance     json.RawMessage `json:"provenance"`
	Image          json.RawMessage `json:"image,omitempty"`
	BuilderKey     string          `json:"builderKey,omitempty"`
	BuilderIssuer  string          `json:"builderIssuer,omitempty"`
	BuilderSubject string          `json:"builderSubject,omitempty"`
	BuildWorker    isolation.Info  `json:"buildWorker"`
}

// wireError is an error across the pipe, with the sentinels it wrapped
// by name, so that the parent's errors.Is works as on a local build.
type wireError struct {
	Message string   `json:"message"`
	Kinds   []string `json:"kinds,omitempty"`
}

// ErrNotVouched is wrapped by the process's refusals to sign a verdict:
// a provenance that does not verify, is about another digest or describes
// other inputs than the rebuild's.
var ErrNotVouched = errors.New("the rebuilder does not vouch for this build")

var sentinels = map[string]error{
	"daemon":       isolation.ErrDaemonFailed,
	"identity":     isolation.ErrWorkerIdentity,
	"same-machine": isolation.ErrSameMachine,
	"build":        builder.ErrBuildFailed,
	"refused":      builder.ErrRefused,
	"invalid":      builder.ErrInvalidRequest,
	"not-vouched":  ErrNotVouched,
}

func toWire(err error) *wireError {
	w := &wireError{Message: err.Error()}
	for name, s := range sentinels {
		if errors.Is(err, s) {
			w.Kinds = append(w.Kinds, name)
		}
	}
	return w
}

// remoteError is an error the rebuild process reported.
type remoteError struct {
	msg   string
	kinds []error
}

func (e *remoteError) Error() string   { return e.msg }
func (e *remoteError) Unwrap() []error { return e.kinds }

func fromWire(w *wireError) error {
	e := &remoteError{msg: w.Message}
	for _, k := range w.Kinds {
		if s, ok := sentinels[k]; ok {
			e.kinds = append(e.kinds, s)
		}
	}
	return fmt.Errorf("the rebuild process: %w", e)
}
