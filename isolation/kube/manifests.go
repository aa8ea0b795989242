package kube

import (
	"errors"
	"fmt"
	"maps"
	"path"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/twinforge/twinforge/isolation"
	"github.com/twinforge/twinforge/isolation/workercert"
)

// Labels and annotations of the objects Deploy makes.
const (
	LabelName      = "app.kubernetes.io/name"
	LabelPartOf    = "app.kubernetes.io/part-of"
	LabelManagedBy = "app.kubernetes.io/managed-by"
	// LabelPool names a worker's pool, LabelWorker the worker.
	LabelPool   = "twinforge.dev/pool"
	LabelWorker = "twinforge.dev/worker"
	// LabelQueue marks the Lease tickets of builds waiting in a pool.
	LabelQueue = "twinforge.dev/queue"
	// AnnotationPurpose on a held Lease says what the holder builds.
	AnnotationPurpose = "twinforge.dev/purpose"
)

// Where the worker container keeps what Deploy gives it.
const (
	workerPort   = 1234
	configDir    = "/etc/buildkit"
	tlsDir       = "/etc/buildkit/tls"
	stateDir     = "/var/lib/buildkit"
	cniBinDir    = "/opt/cni/bin"
	configFile   = "buildkitd.toml"
	networkFile  = "loopback.conflist"
	containerBK  = "buildkitd"
	secretCert   = "tls.crt"
	secretKey    = "tls.key"
	secretCA     = "ca.crt"
	maxPoolName  = 40
	fieldManager = "twinforge"
)

// DefaultImage is the worker image when none is given: BuildKit's own, of
// the version twinforge is built with (buildkitd, runc and the CNI plugins
// under /opt/cni/bin). Pin it by digest in production with Options.Image.
const DefaultImage = "docker.io/moby/buildkit:v0.34.2"

// Options describe a pool of workers to deploy.
type Options struct {
	// Replicas is how many workers the pool has. At least 2: a build and
	// its rebuild need two, on two nodes.
	Replicas int
	// Image is the worker image: buildkitd and runc on PATH and the CNI
	// loopback plugin in /opt/cni/bin. The default is DefaultImage.
	Image string
	// ImagePullPolicy is the pods' pull policy. The default is
	// IfNotPresent.
	ImagePullPolicy corev1.PullPolicy
	// CPU and Memory are each worker's resource requests, which Kubernetes
	// places workers by. The defaults are "1" and "2Gi".
	CPU, Memory string
	// CPULimit and MemoryLimit, when set, bound each worker.
	CPULimit, MemoryLimit string
	// Snapshotter is the workers' snapshotter: overlayfs or native. The
	// default value is overlayfs.
	Snapshotter string
	// NodeSelector and Tolerations restrict which nodes may run workers.
	NodeSelector map[string]string
	Tolerations  []corev1.Toleration
	// PreferredAntiAffinity asks Kubernetes to spread the workers over
	// nodes without requiring it. The default is required: a pool with
	// more workers than nodes leaves the rest Pending rather than put two
	// on one node.
	PreferredAntiAffinity bool
}

func (o *Options) defaults() error {
	if o.Replicas < 2 {
		return fmt.Errorf("replicas %d: a pool needs at least 2 workers, a build and its rebuild on two nodes", o.Replicas)
	}
	if o.Image == "" {
		o.Image = DefaultImage
	}
	if o.ImagePullPolicy == "" {
		o.ImagePullPolicy = corev1.PullIfNotPresent
	}
	if o.CPU == "" {
		o.CPU = "1"
	}
	if o.Memory == "" {
		o.Memory = "2Gi"
	}
	switch o.Snapshotter {
	case "":
		o.Snapshotter = "overlayfs"
	case "overlayfs", "native":
	default:
		return fmt.Errorf("snapshotter %q: use overlayfs or native", o.Snapshotter)
	}
	for name, q := range map[string]string{"cpu": o.CPU, "memory": o.Memory, "cpu limit": o.CPULimit, "memory limit": o.MemoryLimit} {
		if q == "" {
			continue
		}
		if _, err := resource.ParseQuantity(q); err != nil {
			return fmt.Errorf("%s %q: %w", name, q, err)
		}
	}
	return nil
}

// WorkerName is the name of worker i of pool: its StatefulSet, Secret and
// Lease, and the name in its certificate.
func WorkerName(pool string, i int) string { return pool + "-" + strconv.Itoa(i) }

// clientSecretName holds the CA certificate and the client certificate
// builds reach the pool's workers with.
func clientSecretName(pool string) string { return pool + "-client" }

// workerHost is the name a worker's certificate is valid for, which
// clients check through a port forward.
func workerHost(namespace, worker string) string { return worker + "." + namespace }

// Certificates are a pool's certificates: the CA, one per worker (by
// worker name) and the client certificate builds use.
type Certificates struct {
	CA      *workercert.CA
	Workers map[string]*workercert.Issued
	Client  *workercert.Issued
}

// Manifests are the objects of pool in namespace, as Deploy applies them:
// a ConfigMap of the daemon configuration, a Role for the twinforge
// processes that use the pool, a NetworkPolicy and, per worker, a Secret
// with its certificate, a Lease and a StatefulSet of one pod. Secrets
// hold private keys: a worker's own key, and the client key builds use.
func Manifests(c Cluster, o Options, certs *Certificates) ([]runtime.Object, error) {
	if err := c.validate(); err != nil {
		return nil, err
	}
	if err := o.defaults(); err != nil {
		return nil, err
	}
	pool, ns := c.pool(), c.Namespace
	if len(pool) > maxPoolName {
		return nil, fmt.Errorf("pool %q: at most %d characters, so that its pods' names fit Kubernetes' limits", pool, maxPoolName)
	}
	if certs == nil || certs.CA == nil || certs.Client == nil {
		return nil, errors.New("manifests: no certificates")
	}
	poolLabels := map[string]string{
		LabelName:      containerBK,
		LabelPartOf:    "twinforge",
		LabelManagedBy: "twinforge",
		LabelPool:      pool,
	}
	meta := func(kind, name string, extra map[string]string) (metav1.TypeMeta, metav1.ObjectMeta) {
		l := maps.Clone(poolLabels)
		maps.Copy(l, extra)
		apiVersion := "v1"
		switch kind {
		case "StatefulSet":
			apiVersion = appsv1.SchemeGroupVersion.String()
		case "Lease":
			apiVersion = coordinationv1.SchemeGroupVersion.String()
		case "Role":
			apiVersion = rbacv1.SchemeGroupVersion.String()
		case "NetworkPolicy":
			apiVersion = networkingv1.SchemeGroupVersion.String()
		}
		return metav1.TypeMeta{APIVersion: apiVersion, Kind: kind}, metav1.ObjectMeta{Name: name, Namespace: ns, Labels: l}
	}

	config, err := isolation.DaemonConfig(path.Join(configDir, networkFile), cniBinDir)
	if err != nil {
		return nil, err
	}
	var objs []runtime.Object
	tm, om := meta("ConfigMap", pool+"-config", nil)
	objs = append(objs, &corev1.ConfigMap{TypeMeta: tm, ObjectMeta: om, Data: map[string]string{
		configFile:  config,
		networkFile: isolation.LoopbackNetwork(),
	}})
	tm, om = meta("Secret", clientSecretName(pool), nil)
	objs = append(objs, &corev1.Secret{TypeMeta: tm, ObjectMeta: om, Type: corev1.SecretTypeTLS, Data: map[string][]byte{
		secretCA:   certs.CA.CertPEM(),
		secretCert: certs.Client.CertPEM,
		secretKey:  certs.Client.KeyPEM,
	}})
	objs = append(objs, clientRole(meta, pool))
	objs = append(objs, networkPolicy(meta, pool, poolLabels))

	for i := range o.Replicas {
		name := WorkerName(pool, i)
		issued := certs.Workers[name]
		if issued == nil {
			return nil, fmt.Errorf("manifests: no certificate for worker %s", name)
		}
		workerLabels := map[string]string{LabelWorker: name}
		tm, om := meta("Secret", name+"-tls", workerLabels)
		objs = append(objs, &corev1.Secret{TypeMeta: tm, ObjectMeta: om, Type: corev1.SecretTypeTLS, Data: map[string][]byte{
			secretCA:   certs.CA.CertPEM(),
			secretCert: issued.CertPEM,
			secretKey:  issued.KeyPEM,
		}})
		tm, om = meta("Lease", name, workerLabels)
		objs = append(objs, &coordinationv1.Lease{TypeMeta: tm, ObjectMeta: om})
		sts, err := statefulSet(meta, pool, name, poolLabels, workerLabels, o)
		if err != nil {
			return nil, err
		}
		objs = append(objs, sts)
	}
	return objs, nil
}

type metaFunc func(kind, name string, extra map[string]string) (metav1.TypeMeta, metav1.ObjectMeta)

func statefulSet(meta metaFunc, pool, name string, poolLabels, workerLabels map[string]string, o Options) (*appsv1.StatefulSet, error) {
	podLabels := maps.Clone(poolLabels)
	maps.Copy(podLabels, workerLabels)
	requests := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse(o.CPU),
		corev1.ResourceMemory: resource.MustParse(o.Memory),
	}
	limits := corev1.ResourceList{}
	if o.CPULimit != "" {
		limits[corev1.ResourceCPU] = resource.MustParse(o.CPULimit)
	}
	if o.MemoryLimit != "" {
		limits[corev1.ResourceMemory] = resource.MustParse(o.MemoryLimit)
	}
	term := corev1.PodAffinityTerm{
		LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{LabelPool: pool}},
		TopologyKey:   corev1.LabelHostname,
	}
	affinity := &corev1.PodAntiAffinity{RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{term}}
	if o.PreferredAntiAffinity {
		affinity = &corev1.PodAntiAffinity{PreferredDuringSchedulingIgnoredDuringExecution: []corev1.WeightedPodAffinityTerm{{Weight: 100, PodAffinityTerm: term}}}
	}
	privileged := true
	noToken := false
	one := int32(1)
	grace := int64(30)
	probe := &corev1.Probe{
		ProbeHandler:     corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(workerPort)}},
		PeriodSeconds:    5,
		FailureThreshold: 3,
	}
	tm, om := meta("StatefulSet", name, workerLabels)
	return &appsv1.StatefulSet{TypeMeta: tm, ObjectMeta: om, Spec: appsv1.StatefulSetSpec{
		Replicas:            &one,
		ServiceName:         name,
		PodManagementPolicy: appsv1.ParallelPodManagement,
		Selector:            &metav1.LabelSelector{MatchLabels: map[string]string{LabelPool: pool, LabelWorker: name}},
		Template: corev1.PodTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Labels: podLabels},
			Spec: corev1.PodSpec{
				// A worker needs nothing of the API server.
				AutomountServiceAccountToken:  &noToken,
				EnableServiceLinks:            &noToken,
				TerminationGracePeriodSeconds: &grace,
				Affinity:                      &corev1.Affinity{PodAntiAffinity: affinity},
				NodeSelector:                  o.NodeSelector,
				Tolerations:                   o.Tolerations,
				Containers: []corev1.Container{{
					Name:            containerBK,
					Image:           o.Image,
					ImagePullPolicy: o.ImagePullPolicy,
					Command:         []string{"buildkitd"},
					Args: []string{
						"--config", path.Join(configDir, configFile),
						"--root", stateDir,
						"--addr", "tcp://0.0.0.0:" + strconv.Itoa(workerPort),
						"--tlscert", path.Join(tlsDir, secretCert),
						"--tlskey", path.Join(tlsDir, secretKey),
						"--tlscacert", path.Join(tlsDir, secretCA),
						"--oci-worker=true",
						"--containerd-worker=false",
						"--oci-worker-snapshotter", o.Snapshotter,
						"--oci-worker-gc=false",
						"--cdi-disabled",
					},
					Ports:           []corev1.ContainerPort{{Name: "buildkitd", ContainerPort: workerPort, Protocol: corev1.ProtocolTCP}},
					ReadinessProbe:  probe,
					LivenessProbe:   probe,
					Resources:       corev1.ResourceRequirements{Requests: requests, Limits: limits},
					SecurityContext: &corev1.SecurityContext{Privileged: &privileged},
					VolumeMounts: []corev1.VolumeMount{
						{Name: "config", MountPath: configDir + "/" + configFile, SubPath: configFile, ReadOnly: true},
						{Name: "config", MountPath: configDir + "/" + networkFile, SubPath: networkFile, ReadOnly: true},
						{Name: "tls", MountPath: tlsDir, ReadOnly: true},
						{Name: "state", MountPath: stateDir},
					},
				}},
				Volumes: []corev1.Volume{
					{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: pool + "-config"}}}},
					{Name: "tls", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: name + "-tls"}}},
					// State of this pod alone, gone with it: no two workers,
					// and no two incarnations of one, share a cache.
					{Name: "state", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
				},
			},
		},
	}}, nil
}

// clientRole is what a twinforge process that builds on the pool may do:
// read its workers' pods and forward a port to them, hold and queue on
// its Leases, and read the client certificate.
func clientRole(meta metaFunc, pool string) *rbacv1.Role {
	tm, om := meta("Role", pool+"-client", nil)
	return &rbacv1.Role{TypeMeta: tm, ObjectMeta: om, Rules: []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "list", "watch"}},
		{APIGroups: []string{""}, Resources: []string{"pods/portforward"}, Verbs: []string{"create", "get"}},
		{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, Verbs: []string{"get", "list", "watch", "create", "update", "delete"}},
		{APIGroups: []string{""}, Resources: []string{"secrets"}, ResourceNames: []string{clientSecretName(pool)}, Verbs: []string{"get"}},
	}}
}

// networkPolicy lets nothing out of a worker and only connections to its
// BuildKit port in: builds need no network, and a port forward reaches
// the pod from its node.
func networkPolicy(meta metaFunc, pool string, poolLabels map[string]string) *networkingv1.NetworkPolicy {
	tm, om := meta("NetworkPolicy", pool+"-isolate", nil)
	port := intstr.FromInt32(workerPort)
	tcp := corev1.ProtocolTCP
	return &networkingv1.NetworkPolicy{TypeMeta: tm, ObjectMeta: om, Spec: networkingv1.NetworkPolicySpec{
		PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{LabelPool: poolLabels[LabelPool]}},
		PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress},
		Ingress:     []networkingv1.NetworkPolicyIngressRule{{Ports: []networkingv1.NetworkPolicyPort{{Protocol: &tcp, Port: &port}}}},
	}}
}
