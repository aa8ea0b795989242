package admission

import (
	"context"
	"encoding/base64"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/twinforge/twinforge/distribute"
	"github.com/twinforge/twinforge/internal/kubetest"
	"github.com/twinforge/twinforge/internal/regtest"
)

// kubeConfigOf is the KubeConfig of the cluster's administrator.
func kubeConfigOf(t *testing.T, c *kubetest.Cluster) KubeConfig {
	t.Helper()
	token := filepath.Join(t.TempDir(), "token")
	writeTestFile(t, token, c.Token)
	return KubeConfig{URL: c.URL, TokenFile: token, CAFile: c.CAFile}
}

// TestKubernetesLeaderElection: of three replicas re-verifying with leader
// election against a real API server, one holds the Lease and runs the
// background passes; when it stops, another takes over.
func TestKubernetesLeaderElection(t *testing.T) {
	cluster := kubetest.Start(t) // skips under -short
	kc := kubeConfigOf(t, cluster)
	key := newTestKey(t)
	src := Source{PolicyFile: keyPolicy(t, t.TempDir(), key)}
	if _, _, err := cluster.Kubectl(context.Background(), nil, "create", "namespace", "twinforge-system"); err != nil {
		t.Fatal(err)
	}
	var replicas []*webhook
	for i := range 3 {
		w := newTestWebhook(t, src, WithReverification(kc), WithReverifyInterval(time.Hour),
			WithReverifyLeaderElection(LeaderElection{Namespace: "twinforge-system", Name: "reverify", Identity: fmt.Sprintf("replica-%d", i),
				LeaseDuration: 3 * time.Second, RenewDeadline: 2 * time.Second, RetryPeriod: 250 * time.Millisecond}))
		replicas = append(replicas, w)
	}
	leaders := func() []int {
		var out []int
		for i, w := range replicas {
			if w == nil {
				continue
			}
			if v := counterValue(t, w, "twinforge_admission_reverify_leader", ""); v == 1 {
				out = append(out, i)
			}
		}
		return out
	}
	waitLeader := func() int {
		t.Helper()
		deadline := time.Now().Add(time.Minute)
		for {
			if l := leaders(); len(l) == 1 {
				return l[0]
			} else if len(l) > 1 {
				t.Fatalf("%d leaders: %v", len(l), l)
			}
			if time.Now().After(deadline) {
				t.Fatal("no leader elected")
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	first := waitLeader()
	holder, _, err := cluster.Kubectl(context.Background(), nil, "get", "lease", "-n", "twinforge-system", "reverify", "-o", "jsonpath={.spec.holderIdentity}")
	if err != nil || holder != fmt.Sprintf("replica-%d", first) {
		t.Fatalf("Lease held by %q (%v), leader %d", holder, err, first)
	}
	// Only the leader ran a background pass.
	for i, w := range replicas {
		n := counterValue(t, w, "twinforge_admission_reverify_runs_total", `result="ok",trigger="start"`)
		if (i == first) != (n == 1) {
			t.Errorf("replica %d (leader %d) ran %v start passes", i, first, n)
		}
	}
	replicas[first].Close()
	replicas[first] = nil
	second := waitLeader()
	if second == first {
		t.Fatal("the stopped replica still leads")
	}
	if n := counterValue(t, replicas[second], "twinforge_admission_reverify_runs_total", `result="ok",trigger="start"`); n != 1 {
		t.Errorf("the new leader ran %v start passes", n)
	}
}

// TestKubernetesPullSecrets: an image in a registry that wants credentials
// is decided with the pull secret the pod names (read through a real API
// server), and denied without it.
func TestKubernetesPullSecrets(t *testing.T) {
	cluster := kubetest.Start(t) // skips under -short
	reg := regtest.StartDistribution(t, regtest.WithHtpasswd("puller", "s3cret"))
	key := newTestKey(t)
	img, d, m := randomImage(t)
	ref, err := name.ParseReference(reg.Host + "/team/private:v1")
	if err != nil {
		t.Fatal(err)
	}
	res, err := distribute.Push(context.Background(), img, ref, evidenceFor(t, key.signer(t), reg.Host+"/team/private", d, m, true),
		distribute.WithInsecureLoopbackUnsafe(), distribute.WithKeychain(staticKeychain{&authn.Basic{Username: reg.Username, Password: reg.Password}}))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	kubectl := func(stdin []byte, args ...string) {
		t.Helper()
		if _, _, err := cluster.Kubectl(ctx, stdin, args...); err != nil {
			t.Fatal(err)
		}
	}
	kubectl(nil, "create", "namespace", "team")
	dockerConfig := fmt.Sprintf(`{"auths":{%q:{"auth":%q}}}`, reg.Host, base64.StdEncoding.EncodeToString([]byte(reg.Username+":"+reg.Password)))
	kubectl([]byte(fmt.Sprintf(`apiVersion: v1
kind: Secret
metadata: {name: pull, namespace: team}
type: kubernetes.io/dockerconfigjson
data:
  .dockerconfigjson: %s
`, base64.StdEncoding.EncodeToString([]byte(dockerConfig)))), "apply", "-f", "-")

	wh := newTestWebhook(t, Source{PolicyFile: keyPolicy(t, t.TempDir(), key)}, WithImagePullSecrets(kubeConfigOf(t, cluster)),
		WithRegistryOptions(distribute.WithKeychain(staticKeychain{authn.Anonymous})), WithInsecureLoopbackUnsafe())
	// Without credentials the registry refuses (not cached: a registry
	// error), with the pod's pull secret it answers.
	without := podObject(reg.Host + "/team/private@" + res.Digest.String())
	if _, resp := post(t, wh, PathValidate, reviewBody(t, podKind, admissionv1.Create, "team", without, nil)); resp.Allowed {
		t.Fatal("admitted without credentials")
	}
	with := podObject(reg.Host + "/team/private@" + res.Digest.String())
	with.Spec.ImagePullSecrets = []corev1.LocalObjectReference{{Name: "pull"}}
	with.Spec.ServiceAccountName = "none" // no such account: no secrets of its own
	if _, resp := post(t, wh, PathValidate, reviewBody(t, podKind, admissionv1.Create, "team", with, nil)); !resp.Allowed {
		t.Fatalf("denied with the pull secret: %s", message(resp))
	}
}

// staticKeychain answers every registry with one authenticator.
type staticKeychain struct{ a authn.Authenticator }

func (k staticKeychain) Resolve(authn.Resource) (authn.Authenticator, error) { return k.a, nil }
