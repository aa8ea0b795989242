package admission

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/twinforge/twinforge/distribute"
	"github.com/twinforge/twinforge/distribute/release"
)

// Defaults of the options.
const (
	// DefaultDeadline bounds one review, below the API server's maximum
	// webhook timeout of 10 seconds (and Manifests' timeoutSeconds: 10),
	// so that the webhook denies before the API server gives up on it.
	DefaultDeadline = 8 * time.Second
	// DefaultCacheTTL is how long an admitted digest stays verified.
	DefaultCacheTTL = 5 * time.Minute
	// DefaultNegativeCacheTTL is how long a refused digest stays refused.
	DefaultNegativeCacheTTL = 30 * time.Second
	// DefaultCacheSize is how many decisions the cache holds.
	DefaultCacheSize = 4096
	// DefaultPollInterval is how often the files are checked for changes.
	DefaultPollInterval = 2 * time.Second
	// DefaultMaxBodyBytes bounds an AdmissionReview: an UPDATE carries the
	// object and the old object, each at most etcd's default 1.5 MiB.
	DefaultMaxBodyBytes = 4 << 20
)

// Option configures New.
type Option func(*options) error

type options struct {
	logger           *slog.Logger
	deadline         time.Duration
	cacheTTL         time.Duration
	negativeTTL      time.Duration
	negativeSet      bool
	cacheSize        int
	pollInterval     time.Duration
	maxBodyBytes     int64
	mutation         bool
	allowTags        bool
	denialReasons    bool
	registry         []distribute.Option
	recordKey        ed25519.PrivateKey
	pullSecrets      *KubeConfig
	insecureLoopback bool
	now              func() time.Time

	// Release index (release.go).
	release        *release.Client
	releaseRefresh time.Duration

	// Re-verification (reverify.go).
	reverify         *KubeConfig
	reverifyInterval time.Duration
	reverifyExempt   []string
	reverifyReports  chan<- *ReverifyReport
	reverifySet      bool          // a re-verification option besides WithReverification
	reverifyRetry    time.Duration // first retry delay of a failed pass (tests shorten it)
	leaderElection   *LeaderElection
}

func makeOptions(opts ...Option) (*options, error) {
	o := &options{
		logger:       slog.New(slog.NewJSONHandler(io.Discard, nil)),
		deadline:     DefaultDeadline,
		cacheTTL:     DefaultCacheTTL,
		negativeTTL:  DefaultNegativeCacheTTL,
		cacheSize:    DefaultCacheSize,
		pollInterval: DefaultPollInterval,
		maxBodyBytes: DefaultMaxBodyBytes,
		mutation:     true,
		now:          time.Now,

		reverifyInterval: DefaultReverifyInterval,
		reverifyRetry:    defaultReverifyRetry,
	}
	for _, opt := range opts {
		if err := opt(o); err != nil {
			return nil, err
		}
	}
	if o.negativeTTL > o.cacheTTL {
		if o.negativeSet {
			return nil, fmt.Errorf("the negative cache TTL (%s) exceeds the cache TTL (%s): refusals would outlive admissions", o.negativeTTL, o.cacheTTL)
		}
		o.negativeTTL = o.cacheTTL // the default, under a shorter cache TTL
	}
	if o.recordKey != nil && !o.mutation {
		return nil, errors.New("WithRecordKey with WithValidationOnly: the mutating webhook writes the admission records")
	}
	if o.reverifySet && o.reverify == nil {
		return nil, errors.New("re-verification options without WithReverification")
	}
	return o, nil
}

// WithLogger sets the structured logger decisions and reloads are logged
// to. The default discards everything.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) error {
		if l == nil {
			return errors.New("WithLogger: nil logger")
		}
		o.logger = l
		return nil
	}
}

// WithDeadline bounds the decision of one AdmissionReview, every image
// included; what is not verified by then is denied. The default value is
// DefaultDeadline (8s). It must stay below the webhook configuration's
// timeoutSeconds.
func WithDeadline(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 || d > 30*time.Second {
			return fmt.Errorf("WithDeadline: %s: want more than 0 and at most 30s (the API server's limit)", d)
		}
		o.deadline = d
		return nil
	}
}

// WithCacheTTL sets how long an admitted image digest stays verified
// without looking again. The default value is DefaultCacheTTL (5m); 0
// disables the cache.
func WithCacheTTL(d time.Duration) Option {
	return func(o *options) error {
		if d < 0 {
			return fmt.Errorf("WithCacheTTL: negative %s", d)
		}
		o.cacheTTL = d
		return nil
	}
}

// WithNegativeCacheTTL sets how long a refused image digest (evidence that
// does not verify, an image that does not exist) stays refused without
// looking again. The default value is DefaultNegativeCacheTTL (30s), or the
// cache TTL when that is shorter; 0 caches no refusal. It may not exceed the
// cache TTL.
func WithNegativeCacheTTL(d time.Duration) Option {
	return func(o *options) error {
		if d < 0 {
			return fmt.Errorf("WithNegativeCacheTTL: negative %s", d)
		}
		o.negativeTTL, o.negativeSet = d, true
		return nil
	}
}

// WithCacheSize bounds how many decisions the cache keeps; the least
// recently used go first. The default value is DefaultCacheSize (4096).
func WithCacheSize(n int) Option {
	return func(o *options) error {
		if n < 1 {
			return fmt.Errorf("WithCacheSize: %d: want at least 1 (WithCacheTTL(0) disables the cache)", n)
		}
		o.cacheSize = n
		return nil
	}
}

// WithPollInterval sets how often the configuration, policies, trusted root
// and revocation list are checked for changes. The default value is
// DefaultPollInterval (2s); 0 disables polling (Reload still works).
func WithPollInterval(d time.Duration) Option {
	return func(o *options) error {
		if d < 0 {
			return fmt.Errorf("WithPollInterval: negative %s", d)
		}
		o.pollInterval = d
		return nil
	}
}

// WithMaxBodyBytes bounds the size of an AdmissionReview request; larger
// ones are answered with HTTP 413, which the API server treats as a failed
// call (denied under failurePolicy Fail). The default value is
// DefaultMaxBodyBytes (4 MiB).
func WithMaxBodyBytes(n int64) Option {
	return func(o *options) error {
		if n < 1024 {
			return fmt.Errorf("WithMaxBodyBytes: %d: want at least 1024", n)
		}
		o.maxBodyBytes = n
		return nil
	}
}

// WithMutation serves /mutate: the same verification as /validate, and a
// JSONPatch that pins every image named by tag to the digest verified, so
// the kubelet runs the digest that was verified, not what the tag points at
// later (or what a registry answers it). This is the default;
// WithValidationOnly turns it off.
func WithMutation() Option {
	return func(o *options) error {
		o.mutation = true
		return nil
	}
}

// WithValidationOnly serves /validate alone (/mutate answers 404). Nothing
// then pins a tag to the digest verified: a registry answering the webhook
// and the kubelet differently, or a node's stale copy of the tag, runs
// another image than the one verified. So /validate denies every image
// named by tag, unless its tenant sets allowTags (or WithAllowTagsUnsafe).
func WithValidationOnly() Option {
	return func(o *options) error {
		o.mutation = false
		return nil
	}
}

// WithAllowTagsUnsafe lets /validate admit images named by tag in
// validation-only mode for every tenant, as a tenant's allowTags does for
// its own: verified at admission, whatever the kubelet pulls later. By
// default such images are denied.
//
// Do not use this option unless you know what you are doing.
func WithAllowTagsUnsafe() Option {
	return func(o *options) error {
		o.allowTags = true
		return nil
	}
}

// WithRecordKey has the mutating webhook put a signed admission Record on
// every pod it admits (AnnotationRecord, AnnotationRecordSignature): the
// digest verified for each container and the tenants whose policies
// passed, signed with key, which only the webhook holds. The node agent
// verifies records with the public key and compares what runs with them.
// It needs mutation (not WithValidationOnly). By default no record is
// written.
func WithRecordKey(key ed25519.PrivateKey) Option {
	return func(o *options) error {
		if len(key) != ed25519.PrivateKeySize {
			return fmt.Errorf("WithRecordKey: an Ed25519 private key has %d bytes, not %d", ed25519.PrivateKeySize, len(key))
		}
		o.recordKey = key
		return nil
	}
}

// WithRegistryOptions sets how registries are reached, with package
// distribute's options: a CA (distribute.WithCACert), a transport, a
// keychain, a user agent. By default registries are reached over HTTPS
// with the system's roots and the Docker config's credentials, with the
// user agent "twinforge-admission", one quick retry and the authentication
// of each repository kept (bounded). Plain HTTP is governed by
// WithInsecureLoopbackUnsafe, not by these options.
func WithRegistryOptions(opts ...distribute.Option) Option {
	return func(o *options) error {
		for _, opt := range opts {
			if opt == nil {
				return errors.New("WithRegistryOptions: nil option")
			}
		}
		o.registry = append(o.registry, opts...)
		return nil
	}
}

// WithInsecureLoopbackUnsafe allows plain HTTP to registries on loopback
// hosts (127.0.0.0/8, ::1, localhost), as local test registries serve it.
// Every other registry stays HTTPS-only. By default plain HTTP is refused for
// every host.
//
// Do not use this option unless you know what you are doing.
func WithInsecureLoopbackUnsafe() Option {
	return func(o *options) error {
		o.insecureLoopback = true
		return nil
	}
}

// WithDenialReasonsUnsafe puts the reason of every denial into the message
// the API server shows the user: the resolved digest, the failed check and
// what it found (a signer, a source repository, a registry's error). The
// webhook reads registries with credentials of its own and anyone who can
// reach its port can ask it about any image, so these reasons tell a
// caller who cannot pull an image whether it exists, its digest and its
// provenance. By default a denial that depends on the registry says only
// that the image was not verified, and the reason goes to the log under the
// review's uid. Use it where every user who can create pods may read every
// image the tenants cover.
//
// Do not use this option unless you know what you are doing.
func WithDenialReasonsUnsafe() Option {
	return func(o *options) error {
		o.denialReasons = true
		return nil
	}
}
