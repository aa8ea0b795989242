package kube_test

import (
	"errors"
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/twinforge/twinforge/isolation/kube"
)

// The settings Cluster.Check and DeploySettings.Check refuse are usage
// errors to the CLI: each wraps ErrInvalidSettings with the message
// `twinforge workers` prints.
func TestSettingsErrors(t *testing.T) {
	t.Setenv("TWINFORGE_TEST_ZONE", "")
	pool := kube.Cluster{Namespace: "builds", Pool: kube.DefaultPool}
	deploy := func(f func(*kube.DeploySettings)) kube.DeploySettings {
		s := kube.DeploySettings{Cluster: pool, Options: kube.Options{Replicas: 2}}
		f(&s)
		return s
	}
	for _, tc := range []struct {
		name string
		s    kube.DeploySettings
		want string
	}{
		{"no namespace", deploy(func(s *kube.DeploySettings) { s.Cluster.Namespace = "" }),
			"--namespace is required: the namespace the pool lives in"},
		{"bad namespace", deploy(func(s *kube.DeploySettings) { s.Cluster.Namespace = "Builds" }),
			`workers namespace: "Builds": use lower-case letters, digits and '-', at most 63, starting and ending with a letter or digit`},
		{"bad pool", deploy(func(s *kube.DeploySettings) { s.Cluster.Pool = "a_b" }),
			`workers pool: "a_b": use lower-case letters, digits and '-', at most 63, starting and ending with a letter or digit`},
		// The cluster is checked first.
		{"no namespace, one replica", deploy(func(s *kube.DeploySettings) { s.Cluster.Namespace, s.Options.Replicas = "", 1 }),
			"--namespace is required: the namespace the pool lives in"},
		{"node selector without key", deploy(func(s *kube.DeploySettings) { s.NodeSelector = []string{"=b"} }),
			`--node-selector "=b": use KEY=VALUE`},
		{"node selector not in the environment", deploy(func(s *kube.DeploySettings) { s.NodeSelector = []string{"a=b", "TWINFORGE_TEST_UNSET_LABEL"} }),
			`--node-selector "TWINFORGE_TEST_UNSET_LABEL": no value given and TWINFORGE_TEST_UNSET_LABEL is not set in the environment`},
		// The node selector is checked before the replicas.
		{"node selector, one replica", deploy(func(s *kube.DeploySettings) { s.NodeSelector, s.Options.Replicas = []string{"=b"}, 1 }),
			`--node-selector "=b": use KEY=VALUE`},
		{"one replica", deploy(func(s *kube.DeploySettings) { s.Options.Replicas = 1 }),
			"--replicas 1: a pool needs at least 2 workers, a build and its rebuild on two nodes"},
		{"no replicas", deploy(func(s *kube.DeploySettings) { s.Options.Replicas = 0 }),
			"--replicas 0: a pool needs at least 2 workers, a build and its rebuild on two nodes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.s.Check()
			if !errors.Is(err, kube.ErrInvalidSettings) || err.Error() != tc.want {
				t.Fatalf("err = %v, want %q wrapping ErrInvalidSettings", err, tc.want)
			}
			if _, err := tc.s.Run(t.Context(), nil); !errors.Is(err, kube.ErrInvalidSettings) || err.Error() != tc.want {
				t.Errorf("Run: err = %v, want %q", err, tc.want)
			}
		})
	}
}

// Check returns the pool as ParseWorkers reads it, reached as given, and
// the options with the node selector and the pull policy given.
func TestSettingsCheck(t *testing.T) {
	t.Setenv("TWINFORGE_TEST_ZONE", "zone-a")
	c := kube.Cluster{Kubeconfig: "/k/config", Context: "ci", Namespace: "builds", Pool: "fast"}
	k, err := c.Check()
	if err != nil || k != c {
		t.Fatalf("Check = %+v, %v; want %+v", k, err, c)
	}
	if k, err := (kube.Cluster{Namespace: "builds"}).Check(); err != nil || k.Namespace != "builds" || k.String() != "k8s://builds" {
		t.Errorf("Check without a pool = %+v, %v", k, err)
	}

	for _, tc := range []struct {
		name         string
		nodeSelector []string
		pullPolicy   string
		wantSelector map[string]string
		wantPolicy   corev1.PullPolicy
	}{
		{"none", nil, "", nil, ""},
		{"given", []string{"disk=ssd", "TWINFORGE_TEST_ZONE"}, "Always", map[string]string{"disk": "ssd", "TWINFORGE_TEST_ZONE": "zone-a"}, corev1.PullAlways},
		// Kubernetes checks the policy; a name it does not know is its to refuse.
		{"policy as given", nil, "Sometimes", nil, "Sometimes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := kube.DeploySettings{Cluster: c, Options: kube.Options{Replicas: 3}, NodeSelector: tc.nodeSelector, PullPolicy: tc.pullPolicy}.Check()
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(s.Options.NodeSelector, tc.wantSelector) || s.Options.ImagePullPolicy != tc.wantPolicy || s.Options.Replicas != 3 || s.Cluster != c {
				t.Errorf("Check = %+v", s)
			}
		})
	}
}
