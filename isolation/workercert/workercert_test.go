package workercert_test

import (
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/twinforge/twinforge/isolation/workercert"
)

func TestIssueAndLoad(t *testing.T) {
	dir := t.TempDir()
	ca, err := workercert.NewCA("builds")
	if err != nil {
		t.Fatal(err)
	}
	if err := ca.Write(dir); err != nil {
		t.Fatal(err)
	}
	if err := ca.Write(dir); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("second Write: %v, want a refusal to overwrite the CA", err)
	}
	if fi, err := os.Stat(filepath.Join(dir, workercert.CAKeyFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("CA key mode: %v %v", fi, err)
	}
	loaded, err := workercert.LoadCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	if loaded.Pool != "builds" {
		t.Errorf("pool = %q", loaded.Pool)
	}
	w, err := loaded.Worker("worker-0", "worker-0.builds", "10.0.0.7")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := workercert.ParseCertificate(w.CertPEM)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, DNSName: "worker-0.builds", KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
		t.Errorf("worker certificate does not verify as a server: %v", err)
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err == nil {
		t.Error("a worker certificate verifies as a client")
	}
	if got, want := workercert.IdentityOf(cert), "spiffe://twinforge/workers/builds/worker-0"; got != want || w.Identity != want {
		t.Errorf("identity = %q (issued %q), want %q", got, w.Identity, want)
	}
	c, err := loaded.Client("ci")
	if err != nil {
		t.Fatal(err)
	}
	ccert, _ := workercert.ParseCertificate(c.CertPEM)
	if _, err := ccert.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err == nil {
		t.Error("a client certificate verifies as a server")
	}

	other, _ := workercert.NewCA("builds")
	otherDir := t.TempDir()
	if err := other.Write(otherDir); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(otherDir, workercert.CAKeyFile), filepath.Join(dir, workercert.CAKeyFile)); err != nil {
		t.Fatal(err)
	}
	if _, err := workercert.LoadCA(dir); err == nil || !strings.Contains(err.Error(), "does not belong") {
		t.Errorf("LoadCA with another CA's key: %v", err)
	}
}

func TestNamesAndIdentities(t *testing.T) {
	ca, err := workercert.NewCA("builds")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name  string
		hosts []string
		ok    bool
	}{
		{"worker-0", []string{"a"}, true},
		{"Worker", []string{"a"}, false},
		{"a/b", []string{"a"}, false},
		{"worker-0", nil, false},
	} {
		_, err := ca.Worker(tt.name, tt.hosts...)
		if (err == nil) != tt.ok {
			t.Errorf("Worker(%q, %v): %v", tt.name, tt.hosts, err)
		}
	}
	if _, err := workercert.NewCA("Bad Pool"); err == nil {
		t.Error("a pool name with spaces was accepted")
	}
	kind, pool, name, err := workercert.ParseIdentity("spiffe://twinforge/workers/builds/worker-1")
	if err != nil || kind != workercert.Worker || pool != "builds" || name != "worker-1" {
		t.Errorf("ParseIdentity: %v %v %v %v", kind, pool, name, err)
	}
	for _, bad := range []string{"spiffe://other/workers/a/b", "spiffe://twinforge/workers/a", "spiffe://twinforge/nodes/a/b"} {
		if _, _, _, err := workercert.ParseIdentity(bad); err == nil {
			t.Errorf("ParseIdentity(%q) accepted", bad)
		}
	}
}
