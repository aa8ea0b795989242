package nodeagent

import (
	"fmt"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/twinforge/twinforge/admission"
)

// Settings are what `twinforge node-agent` runs the agent with, each field
// named after its flag. ServeConfig checks them; what cannot work is an
// *admission.ConfigError naming the flag.
type Settings struct {
	Node, CRIEndpoint string
	Source            admission.Source
	RecordKeyFile     string
	// Addr (metrics-addr) serves /metrics, /healthz and /report.
	Addr string
	// Interval is the time between passes; OnMismatch and OnError the
	// actions (alert or evict) on a violation and on a failed check.
	Interval            time.Duration
	OnMismatch, OnError string
	ExemptNamespaces    []string
	PollInterval        time.Duration
	// ImagePullSecrets reaches registries with the pods' pull secrets too.
	ImagePullSecrets bool
	Registry         admission.RegistryAccess
	Kube             admission.KubeAccess
}

func configErrorf(setting, format string, args ...any) error {
	return &admission.ConfigError{Setting: setting, Err: fmt.Errorf(format, args...)}
}

// ServeConfig checks s and returns the configuration of Serve; inCluster
// gives the pod's own KubeConfig when s names no API server.
func (s Settings) ServeConfig(inCluster func() (admission.KubeConfig, error)) (*ServeConfig, error) {
	if err := admission.CheckSource(s.Source); err != nil {
		return nil, err
	}
	switch {
	case s.Node == "":
		return nil, configErrorf("node", "give --node NAME (or NODE_NAME): the node the agent runs on")
	case s.RecordKeyFile == "":
		return nil, configErrorf("record-public-key", "give --record-public-key FILE: the public key admission records are verified with")
	}
	if errs := validation.IsDNS1123Subdomain(s.Node); len(errs) > 0 {
		return nil, configErrorf("node", "--node %q: %s", s.Node, strings.Join(errs, "; "))
	}
	if !strings.HasPrefix(s.CRIEndpoint, "unix://") {
		return nil, configErrorf("cri", "--cri %q: use unix:///PATH", s.CRIEndpoint)
	}
	if err := admission.CheckFiles(map[string]string{"record-public-key": s.RecordKeyFile}); err != nil {
		return nil, err
	}
	onMismatch, err := ParseAction(s.OnMismatch)
	if err != nil {
		return nil, configErrorf("on-mismatch", "--on-mismatch: %v", err)
	}
	onError, err := ParseAction(s.OnError)
	if err != nil {
		return nil, configErrorf("on-error", "--on-error: %v", err)
	}
	if s.Interval <= 0 {
		return nil, configErrorf("interval", "--interval %s: want more than 0", s.Interval)
	}
	cfg := &ServeConfig{
		Node: s.Node, CRIEndpoint: s.CRIEndpoint, Source: s.Source, RecordKeyFile: s.RecordKeyFile, Addr: s.Addr,
		Options: []Option{WithInterval(s.Interval), WithOnViolation(onMismatch), WithOnError(onError)},
	}
	if len(s.ExemptNamespaces) > 0 {
		if err := admission.CheckNamespaces("exempt-namespace", s.ExemptNamespaces); err != nil {
			return nil, err
		}
		cfg.Options = append(cfg.Options, WithExemptNamespaces(s.ExemptNamespaces...))
	}
	if cfg.Kube, err = s.Kube.Config(inCluster); err != nil {
		return nil, err
	}
	reg, err := s.Registry.Options()
	if err != nil {
		return nil, err
	}
	cfg.VerifierOptions = append(reg, admission.WithPollInterval(s.PollInterval))
	if s.ImagePullSecrets {
		cfg.VerifierOptions = append(cfg.VerifierOptions, admission.WithImagePullSecrets(cfg.Kube))
	}
	return cfg, nil
}
