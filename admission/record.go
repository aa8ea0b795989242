package admission

import (
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The annotations of the admission record the mutating webhook puts on
// every pod it admits (WithRecordKey).
const (
	// AnnotationRecord holds the Record, as JSON.
	AnnotationRecord = "twinforge.dev/admission-record"
	// AnnotationRecordSignature holds the Ed25519 signature of the exact
	// bytes of AnnotationRecord, base64 (standard encoding).
	AnnotationRecordSignature = "twinforge.dev/admission-record-signature"
)

// RecordVersion is the version of the Record format.
const RecordVersion = 1

var (
	// ErrNoRecord means a pod carries no admission record: admission did
	// not see it (an exempt namespace, a webhook without records, a pod
	// older than the webhook) or the record was removed.
	ErrNoRecord = errors.New("no admission record")
	// ErrRecordInvalid means a pod's admission record does not verify: its
	// signature, its format, the key that signed it or the namespace it was
	// made for is wrong. A record that was edited after admission is one.
	ErrRecordInvalid = errors.New("invalid admission record")
)

// Record is what the webhook verified when it admitted a pod: the digest of
// each container's image and the tenants whose policies passed.
//
// Who can forge it decides what it is worth. Anyone who may update a pod
// may write its annotations, so the record is signed with a key only the
// webhook holds (Ed25519; node agents get the public key and cannot sign).
// The signature binds the namespace and every container's name, image and
// digest; a record copied to a pod of another namespace, or edited, does
// not verify. It does not bind the pod's name or UID: the mutating webhook
// runs before the API server names pods made from a generateName and gives
// them their UID. A record copied to another pod of the same namespace
// therefore only claims what is true of that namespace: these images, at
// these digests, passed its policies. The node agent compares what actually
// runs with it, and verifies those digests again against the policy in
// force. On an UPDATE the webhook writes the record again, and puts back
// the record of the old object when the update changed no image, so that an
// update cannot replace it either.
type Record struct {
	// Version is RecordVersion.
	Version int `json:"version"`
	// Namespace is the pod's namespace.
	Namespace string `json:"namespace"`
	// Containers are the containers, init containers, ephemeral
	// containers and image volumes admitted, in the pod spec's order.
	Containers []RecordedContainer `json:"containers"`
	// PolicyVersion is the version (a hash of the configuration, policies
	// and trusted root) in force when the record was made.
	PolicyVersion string `json:"policyVersion"`
	// Time is when the record was made.
	Time time.Time `json:"time"`
	// KeyID names the key that signed the record (RecordKeyID).
	KeyID string `json:"keyID"`
}

// RecordedContainer is the admission of one container's image.
type RecordedContainer struct {
	// Field is where the container is in the pod spec: "containers",
	// "initContainers", "ephemeralContainers", or "volumes" for an image
	// volume, whose files a container mounts.
	Field string `json:"field"`
	// Name is the container's name.
	Name string `json:"name"`
	// Image is the image the container runs, pinned: "repo@sha256:...".
	Image string `json:"image"`
	// Digest is the manifest (or index) digest verified.
	Digest string `json:"digest"`
	// Tenants are the tenants whose policies verified the image, each with
	// its policy version.
	Tenants []RecordedTenant `json:"tenants"`
}

// RecordedTenant is a tenant whose policy passed.
type RecordedTenant struct {
	Name   string `json:"name"`
	Policy string `json:"policy"`
}

// Container returns the entry of a container by field and name.
func (r *Record) Container(field, name string) (RecordedContainer, bool) {
	for _, c := range r.Containers {
		if c.Field == field && c.Name == name {
			return c, true
		}
	}
	return RecordedContainer{}, false
}

// RecordKeyID is the ID of a record key: the first 16 hex digits of the
// SHA-256 of its public key's PKIX encoding.
func RecordKeyID(pub ed25519.PublicKey) string {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:8])
}

// ParseRecordKey reads the webhook's Ed25519 record signing key from PEM
// (PKCS #8, "PRIVATE KEY", as `openssl genpkey -algorithm ed25519` writes
// it).
func ParseRecordKey(data []byte) (ed25519.PrivateKey, error) {
	for rest := data; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			return nil, errors.New("record key: no PEM PRIVATE KEY block")
		}
		if b.Type != "PRIVATE KEY" {
			continue
		}
		k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("record key: %w", err)
		}
		priv, ok := k.(ed25519.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("record key: a %T, want an Ed25519 key", k)
		}
		return priv, nil
	}
}

// ParseRecordPublicKeys reads the Ed25519 public keys records are verified
// with from PEM ("PUBLIC KEY" blocks, PKIX; `openssl pkey -pubout` writes
// one). Several keys allow a rotation: a record signed by any verifies.
func ParseRecordPublicKeys(data []byte) ([]ed25519.PublicKey, error) {
	var keys []ed25519.PublicKey
	for rest := data; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		if b.Type != "PUBLIC KEY" {
			continue
		}
		k, err := x509.ParsePKIXPublicKey(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("record public key: %w", err)
		}
		pub, ok := k.(ed25519.PublicKey)
		if !ok {
			return nil, fmt.Errorf("record public key: a %T, want an Ed25519 key", k)
		}
		keys = append(keys, pub)
	}
	if len(keys) == 0 {
		return nil, errors.New("record public key: no PEM PUBLIC KEY block")
	}
	return keys, nil
}

// maxRecordBytes bounds a record annotation that is verified.
const maxRecordBytes = 256 << 10

// VerifyRecord reads and verifies the admission record of a pod in
// namespace from its annotations, against keys. It returns ErrNoRecord when
// there is none, and an error wrapping ErrRecordInvalid when it does not
// verify.
func VerifyRecord(annotations map[string]string, namespace string, keys []ed25519.PublicKey) (*Record, error) {
	data, ok := annotations[AnnotationRecord]
	sig, sigOK := annotations[AnnotationRecordSignature]
	switch {
	case !ok && !sigOK:
		return nil, ErrNoRecord
	case !ok || !sigOK:
		return nil, fmt.Errorf("%w: %s or %s is missing", ErrRecordInvalid, AnnotationRecord, AnnotationRecordSignature)
	case len(data) > maxRecordBytes:
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrRecordInvalid, maxRecordBytes)
	case len(keys) == 0:
		return nil, fmt.Errorf("%w: no key to verify it with", ErrRecordInvalid)
	}
	rawSig, err := base64.StdEncoding.DecodeString(sig)
	if err != nil || len(rawSig) != ed25519.SignatureSize {
		return nil, fmt.Errorf("%w: the signature is not a base64 Ed25519 signature", ErrRecordInvalid)
	}
	// The signature first: nothing of an unsigned record is read.
	if !slices.ContainsFunc(keys, func(k ed25519.PublicKey) bool { return ed25519.Verify(k, []byte(data), rawSig) }) {
		return nil, fmt.Errorf("%w: the signature does not verify with any record key", ErrRecordInvalid)
	}
	var r Record
	dec := json.NewDecoder(strings.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrRecordInvalid, err)
	}
	switch {
	case r.Version != RecordVersion:
		return nil, fmt.Errorf("%w: version %d, want %d", ErrRecordInvalid, r.Version, RecordVersion)
	case r.Namespace != namespace:
		return nil, fmt.Errorf("%w: made for namespace %q, not %q", ErrRecordInvalid, r.Namespace, namespace)
	}
	for _, c := range r.Containers {
		if !sha256Digest.MatchString(c.Digest) || !strings.HasSuffix(c.Image, "@"+c.Digest) {
			return nil, fmt.Errorf("%w: container %s: image %q, digest %q", ErrRecordInvalid, c.Name, c.Image, c.Digest)
		}
	}
	return &r, nil
}

// signRecord returns the annotations of r signed with key.
func signRecord(r *Record, key ed25519.PrivateKey) (map[string]string, error) {
	r.Version = RecordVersion
	r.KeyID = RecordKeyID(key.Public().(ed25519.PublicKey))
	data, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("encoding the admission record: %w", err)
	}
	return map[string]string{
		AnnotationRecord:          string(data),
		AnnotationRecordSignature: base64.StdEncoding.EncodeToString(ed25519.Sign(key, data)),
	}, nil
}

// annotationPatch is the JSONPatch that makes the record annotations of an
// object with annotations have be want (nil: none).
func annotationPatch(have map[string]string, want map[string]string) []jsonPatchOp {
	keys := []string{AnnotationRecord, AnnotationRecordSignature}
	if have == nil {
		if want == nil {
			return nil
		}
		return []jsonPatchOp{{Op: "add", Path: "/metadata/annotations", Value: want}}
	}
	var ops []jsonPatchOp
	for _, k := range keys {
		path := "/metadata/annotations/" + strings.ReplaceAll(strings.ReplaceAll(k, "~", "~0"), "/", "~1")
		old, had := have[k]
		v, wanted := want[k]
		switch {
		case wanted && (!had || old != v):
			ops = append(ops, jsonPatchOp{Op: "add", Path: path, Value: v})
		case !wanted && had:
			ops = append(ops, jsonPatchOp{Op: "remove", Path: path})
		}
	}
	return ops
}

// recordPatch is the JSONPatch that puts the admission record on a pod
// being admitted. all are the pod's container images, verdicts those decided
// in this review (all of them on a CREATE, those introduced on an UPDATE).
// An UPDATE that introduces no image gets the old object's record back, so
// that no update but through the webhook changes it; one that does gets a
// new record, keeping the entries of the old record (if it verifies) for
// the containers whose image did not change.
func (w *webhook) recordPatch(req *admissionv1.AdmissionRequest, snap *snapshot, all []containerImage, verdicts []imageVerdict) ([]jsonPatchOp, error) {
	var obj, old struct {
		Metadata metav1.ObjectMeta `json:"metadata"`
	}
	if err := json.Unmarshal(req.Object.Raw, &obj); err != nil {
		return nil, fmt.Errorf("%w: decoding the pod's metadata: %v", errInvalidObject, err)
	}
	have := obj.Metadata.Annotations
	update := req.Operation == admissionv1.Update && len(req.OldObject.Raw) > 0
	if update {
		if err := json.Unmarshal(req.OldObject.Raw, &old); err != nil {
			return nil, fmt.Errorf("%w: decoding the old pod's metadata: %v", errInvalidObject, err)
		}
		if len(verdicts) == 0 {
			var want map[string]string
			for _, k := range []string{AnnotationRecord, AnnotationRecordSignature} {
				if v, ok := old.Metadata.Annotations[k]; ok {
					if want == nil {
						want = map[string]string{}
					}
					want[k] = v
				}
			}
			return annotationPatch(have, want), nil
		}
	}
	decided := map[string]imageVerdict{}
	for _, v := range verdicts {
		decided[v.Path] = v
	}
	var previous *Record
	if update {
		pub := w.o.recordKey.Public().(ed25519.PublicKey)
		previous, _ = VerifyRecord(old.Metadata.Annotations, req.Namespace, []ed25519.PublicKey{pub})
	}
	rec := &Record{Namespace: req.Namespace, PolicyVersion: snap.version, Time: w.o.now().UTC().Truncate(time.Second)}
	for _, img := range all {
		if v, ok := decided[img.Path]; ok {
			pinned, ok := pin(v.Image, v.digest)
			if !ok {
				pinned = v.Image
			}
			rec.Containers = append(rec.Containers, RecordedContainer{
				Field: img.Field, Name: img.Name, Image: pinned, Digest: v.digest, Tenants: v.tenants,
			})
			continue
		}
		if previous != nil {
			if c, ok := previous.Container(img.Field, img.Name); ok && c.Image == img.Image {
				rec.Containers = append(rec.Containers, c)
			}
		}
	}
	ann, err := signRecord(rec, w.o.recordKey)
	if err != nil {
		return nil, err
	}
	return annotationPatch(have, ann), nil
}
