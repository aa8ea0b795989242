package workercert

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// Validity is how long issued certificates are valid; the CA's is ten
// times as long.
const Validity = 365 * 24 * time.Hour

// File names Write and Load use in a directory.
const (
	CAFile     = "ca.pem"
	CAKeyFile  = "ca-key.pem"
	CertSuffix = ".pem"
	KeySuffix  = "-key.pem"
)

// identityPrefix starts every identity this package issues.
const identityPrefix = "spiffe://twinforge/"

// Kind says what a certificate is for.
type Kind string

const (
	// Worker certificates serve TLS: a buildkitd's --tlscert.
	Worker Kind = "workers"
	// Client certificates authenticate a twinforge process to workers.
	Client Kind = "clients"
)

// Identity is the identity a certificate of kind for name in pool carries.
func Identity(kind Kind, pool, name string) string {
	return identityPrefix + string(kind) + "/" + pool + "/" + name
}

// ParseIdentity splits an identity this package issues into its parts.
func ParseIdentity(id string) (kind Kind, pool, name string, err error) {
	rest, ok := strings.CutPrefix(id, identityPrefix)
	parts := strings.Split(rest, "/")
	if !ok || len(parts) != 3 || (parts[0] != string(Worker) && parts[0] != string(Client)) {
		return "", "", "", fmt.Errorf("identity %q: not a twinforge worker or client identity (%sworkers/POOL/NAME)", id, identityPrefix)
	}
	return Kind(parts[0]), parts[1], parts[2], nil
}

// validName is what a pool or a certificate's name may be: what a
// Kubernetes object's name may be, so that either can be one.
var validName = regexp.MustCompile(`^[a-z0-9]([-a-z0-9.]{0,61}[a-z0-9])?$`)

func checkName(what, name string) error {
	if !validName.MatchString(name) {
		return fmt.Errorf("%s %q: use lower-case letters, digits, '-' and '.', at most 63, starting and ending with a letter or digit", what, name)
	}
	return nil
}

// CA is the certificate authority of one pool of workers.
type CA struct {
	// Pool names the pool; every identity the CA issues names it.
	Pool string
	// Cert is the CA's certificate.
	Cert *x509.Certificate
	key  crypto.Signer
	now  func() time.Time
}

// NewCA makes a new CA for pool.
func NewCA(pool string) (*CA, error) {
	if err := checkName("pool", pool); err != nil {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("making the worker CA key: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "twinforge workers " + pool, Organization: []string{"twinforge"}},
		NotBefore:             now.Add(-5 * time.Minute),
		NotAfter:              now.Add(10 * Validity),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		URIs:                  []*url.URL{mustURL(identityPrefix + "ca/" + pool)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("making the worker CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &CA{Pool: pool, Cert: cert, key: key, now: time.Now}, nil
}

// CertPEM is the CA certificate, PEM-encoded: what verifies workers and
// clients.
func (ca *CA) CertPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Cert.Raw})
}

// Issued is a certificate and its private key, PEM-encoded.
type Issued struct {
	Name     string
	Identity string
	CertPEM  []byte
	KeyPEM   []byte
}

// Worker issues the server certificate of worker name, valid for the DNS
// names and IP addresses in hosts (at least one: what clients dial).
func (ca *CA) Worker(name string, hosts ...string) (*Issued, error) {
	if len(hosts) == 0 {
		return nil, fmt.Errorf("worker %s: no host names: give the names or addresses clients reach it by", name)
	}
	return ca.issue(Worker, name, hosts, x509.ExtKeyUsageServerAuth)
}

// Client issues a client certificate for name.
func (ca *CA) Client(name string) (*Issued, error) {
	return ca.issue(Client, name, nil, x509.ExtKeyUsageClientAuth)
}

func (ca *CA) issue(kind Kind, name string, hosts []string, usage x509.ExtKeyUsage) (*Issued, error) {
	if err := checkName(strings.TrimSuffix(string(kind), "s")+" name", name); err != nil {
		return nil, err
	}
	if ca.key == nil {
		return nil, errors.New("the worker CA has no private key: load it with its key to issue certificates")
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("making a key for %s: %w", name, err)
	}
	id := Identity(kind, ca.Pool, name)
	now := ca.now()
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: name, Organization: []string{"twinforge"}, OrganizationalUnit: []string{string(kind) + " " + ca.Pool}},
		NotBefore:    now.Add(-5 * time.Minute),
		NotAfter:     now.Add(Validity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
		URIs:         []*url.URL{mustURL(id)},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.key)
	if err != nil {
		return nil, fmt.Errorf("issuing the certificate of %s: %w", name, err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return &Issued{
		Name:     name,
		Identity: id,
		CertPEM:  pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:   pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
	}, nil
}

// Write keeps the CA in dir: ca.pem and ca-key.pem (mode 0600). It refuses
// to overwrite a CA already there: a new CA would orphan every
// certificate the old one issued.
func (ca *CA) Write(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("writing the worker CA: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(ca.key)
	if err != nil {
		return err
	}
	for _, f := range []string{CAFile, CAKeyFile} {
		if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
			return fmt.Errorf("writing the worker CA: %s already exists: load it instead of making a new one", filepath.Join(dir, f))
		}
	}
	if err := writeFile(filepath.Join(dir, CAKeyFile), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})); err != nil {
		return fmt.Errorf("writing the worker CA: %w", err)
	}
	if err := writeFile(filepath.Join(dir, CAFile), ca.CertPEM()); err != nil {
		return fmt.Errorf("writing the worker CA: %w", err)
	}
	return nil
}

// Write keeps an issued certificate in dir as NAME.pem and NAME-key.pem
// and returns their paths.
func (i *Issued) Write(dir string) (cert, key string, err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", "", err
	}
	cert, key = filepath.Join(dir, i.Name+CertSuffix), filepath.Join(dir, i.Name+KeySuffix)
	if err := writeFile(key, i.KeyPEM); err != nil {
		return "", "", fmt.Errorf("writing the key of %s: %w", i.Name, err)
	}
	if err := writeFile(cert, i.CertPEM); err != nil {
		return "", "", fmt.Errorf("writing the certificate of %s: %w", i.Name, err)
	}
	return cert, key, nil
}

// LoadCA reads the CA Write kept in dir.
func LoadCA(dir string) (*CA, error) {
	certPEM, err := os.ReadFile(filepath.Join(dir, CAFile))
	if err != nil {
		return nil, fmt.Errorf("reading the worker CA: %w", err)
	}
	keyPEM, err := os.ReadFile(filepath.Join(dir, CAKeyFile))
	if err != nil {
		return nil, fmt.Errorf("reading the worker CA key: %w", err)
	}
	cert, err := ParseCertificate(certPEM)
	if err != nil {
		return nil, fmt.Errorf("worker CA %s: %w", filepath.Join(dir, CAFile), err)
	}
	if !cert.IsCA {
		return nil, fmt.Errorf("worker CA %s: not a CA certificate", filepath.Join(dir, CAFile))
	}
	pool := ""
	for _, u := range cert.URIs {
		if p, ok := strings.CutPrefix(u.String(), identityPrefix+"ca/"); ok {
			pool = p
		}
	}
	if pool == "" {
		return nil, fmt.Errorf("worker CA %s: not a twinforge worker CA (no %sca/POOL identity)", filepath.Join(dir, CAFile), identityPrefix)
	}
	block, _ := pem.Decode(keyPEM)
	if block == nil {
		return nil, fmt.Errorf("worker CA key %s: no PEM block", filepath.Join(dir, CAKeyFile))
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("worker CA key %s: %w", filepath.Join(dir, CAKeyFile), err)
	}
	signer, ok := k.(crypto.Signer)
	if !ok || !publicKeysEqual(signer.Public(), cert.PublicKey) {
		return nil, fmt.Errorf("worker CA key %s does not belong to %s", filepath.Join(dir, CAKeyFile), filepath.Join(dir, CAFile))
	}
	return &CA{Pool: pool, Cert: cert, key: signer, now: time.Now}, nil
}

// ParseCertificate reads the first certificate of a PEM file's content.
func ParseCertificate(data []byte) (*x509.Certificate, error) {
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, errors.New("no PEM certificate")
	}
	return x509.ParseCertificate(block.Bytes)
}

// IdentityOf is the identity a certificate carries: its first URI subject
// alternative name, or, for a certificate made elsewhere without one, its
// subject's common name.
func IdentityOf(cert *x509.Certificate) string {
	if len(cert.URIs) > 0 {
		return cert.URIs[0].String()
	}
	return cert.Subject.CommonName
}

func publicKeysEqual(a, b crypto.PublicKey) bool {
	type equaler interface{ Equal(crypto.PublicKey) bool }
	e, ok := a.(equaler)
	return ok && e.Equal(b)
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return n
}

func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}

// writeFile writes data through a temporary file and a rename, mode 0600.
func writeFile(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// Files are the files IssueFiles wrote, by certificate name.
type Files struct {
	// Dir holds them; CA is the CA certificate, NewCA says it was made now.
	Dir   string `json:"dir"`
	CA    string `json:"ca"`
	NewCA bool   `json:"newCA"`
	// Certs and Keys are the certificate and key of each name issued.
	Certs map[string]string `json:"certs"`
	Keys  map[string]string `json:"keys"`
	// Identities are their identities.
	Identities map[string]string `json:"identities"`
}

// IssueFiles issues certificates into dir with the CA kept there, making
// the CA for pool first if dir has none: a worker certificate for each
// worker (name to the host names clients reach it by) and a client
// certificate for each client name.
func IssueFiles(dir, pool string, workers map[string][]string, clients []string) (*Files, error) {
	ca, err := LoadCA(dir)
	f := &Files{Dir: dir, CA: filepath.Join(dir, CAFile), Certs: map[string]string{}, Keys: map[string]string{}, Identities: map[string]string{}}
	switch {
	case err == nil:
		if ca.Pool != pool {
			return nil, fmt.Errorf("the CA in %s is pool %q's, not %q's", dir, ca.Pool, pool)
		}
	case errors.Is(err, os.ErrNotExist):
		if ca, err = NewCA(pool); err != nil {
			return nil, err
		}
		if err := ca.Write(dir); err != nil {
			return nil, err
		}
		f.NewCA = true
	default:
		return nil, err
	}
	issue := func(name string, i *Issued, err error) error {
		if err != nil {
			return err
		}
		if f.Certs[name], f.Keys[name], err = i.Write(dir); err != nil {
			return err
		}
		f.Identities[name] = i.Identity
		return nil
	}
	for name, hosts := range workers {
		i, err := ca.Worker(name, hosts...)
		if err := issue(name, i, err); err != nil {
			return nil, err
		}
	}
	for _, name := range clients {
		if _, dup := workers[name]; dup {
			return nil, fmt.Errorf("%s is named as a worker and as a client", name)
		}
		i, err := ca.Client(name)
		if err := issue(name, i, err); err != nil {
			return nil, err
		}
	}
	return f, nil
}

// ParseWorkers reads workers as `twinforge workers certs --worker` takes
// them, NAME=HOST[,HOST...] each, into the map IssueFiles takes.
func ParseWorkers(values []string) (map[string][]string, error) {
	workers := map[string][]string{}
	for _, w := range values {
		name, hosts, ok := strings.Cut(w, "=")
		if !ok || name == "" || hosts == "" {
			return nil, fmt.Errorf("--worker %q: use NAME=HOST[,HOST...]", w)
		}
		workers[name] = strings.Split(hosts, ",")
	}
	return workers, nil
}
