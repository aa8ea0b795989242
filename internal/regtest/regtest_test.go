package regtest_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/twinforge/twinforge/internal/regtest"
)

// The premise of the distribute tests: distribution has no referrers API,
// the ggcr registry has it.
func TestRegistryKinds(t *testing.T) {
	regtest.NeedRegistry(t)
	digest := "sha256:" + strings.Repeat("0", 64)
	tests := []struct {
		name   string
		start  func(testing.TB) *regtest.Registry
		status int
	}{
		{"distribution", func(t testing.TB) *regtest.Registry { return regtest.StartDistribution(t) }, http.StatusNotFound},
		{"referrers", regtest.StartReferrers, http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.start(t)
			// A repository must exist for the ggcr registry to answer 200.
			upload(t, r.Client(), r.URL(), "{}")
			put, _ := http.NewRequest(http.MethodPut, r.URL()+"/v2/x/manifests/t", strings.NewReader(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}`))
			put.Header.Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
			resp, err := r.Client().Do(put)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusCreated {
				t.Fatalf("PUT manifest: %s", resp.Status)
			}
			resp, err = r.Client().Get(r.URL() + "/v2/x/referrers/" + digest)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.status {
				t.Errorf("referrers API: %s, want %d", resp.Status, tt.status)
			}
			if tags := r.Tags(t, "x"); len(tags) != 1 || tags[0] != "t" {
				t.Errorf("tags = %v", tags)
			}
		})
	}
}

func TestFaultProxy(t *testing.T) {
	r := regtest.StartReferrers(t)
	blob := strings.Repeat("twinforge", 1000)
	p := regtest.NewFaultProxy(t, r.Host,
		regtest.FailFirst(regtest.BlobUpload(), 2, 503),
		regtest.DropAfter(regtest.BlobGet(), 100),
		regtest.Corrupt(regtest.BlobGet()).Times(1),
	)
	c := &http.Client{}
	base := "http://" + p.Host
	var statuses []int
	var loc string
	for range 3 {
		resp, err := c.Post(base+"/v2/x/blobs/uploads/", "", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		statuses = append(statuses, resp.StatusCode)
		loc = resp.Header.Get("Location")
	}
	if statuses[0] != 503 || statuses[1] != 503 || statuses[2] != http.StatusAccepted {
		t.Fatalf("statuses = %v, want 503 503 202", statuses)
	}
	if !strings.HasPrefix(loc, "/") && !strings.HasPrefix(loc, base) {
		t.Errorf("upload location %q does not lead back through the proxy", loc)
	}
	if !strings.HasPrefix(loc, "http") {
		loc = base + loc
	}
	sep := "?"
	if strings.Contains(loc, "?") {
		sep = "&"
	}
	put, _ := http.NewRequest(http.MethodPut, loc+sep+"digest=sha256:"+sha256hex(blob), strings.NewReader(blob))
	resp, err := c.Do(put)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("upload: %s", resp.Status)
	}

	get := func() (string, error) {
		resp, err := c.Get(base + "/v2/x/blobs/sha256:" + sha256hex(blob))
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return string(b), err
	}
	if got, err := get(); err == nil || len(got) != 100 {
		t.Errorf("dropped GET: %d bytes, %v; want 100 bytes and an error", len(got), err)
	}
	if got, err := get(); err != nil || len(got) != len(blob) || got == blob {
		t.Errorf("corrupted GET: %d bytes, %v, equal %v", len(got), err, got == blob)
	}
	if got, err := get(); err != nil || got != blob {
		t.Errorf("plain GET: %d bytes, %v", len(got), err)
	}
	// The proxy logs a request when its handler returns, which may be
	// after the client has read the whole answer.
	settled := func(count func() int, want int) int {
		deadline := time.Now().Add(5 * time.Second)
		for count() != want && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		return count()
	}
	if n := settled(p.Injected, 4); n != 4 {
		t.Errorf("%d faults injected, want 4", n)
	}
	if n := settled(func() int { return p.Count(regtest.BlobGet()) }, 3); n != 3 {
		t.Errorf("%d blob GETs seen, want 3", n)
	}
}

// TestCorruptUpload: the registry gets other bytes than were sent, and
// refuses them by their digest.
func TestCorruptUpload(t *testing.T) {
	r := regtest.StartReferrers(t)
	blob := strings.Repeat("twinforge", 1000)
	p := regtest.NewFaultProxy(t, r.Host, regtest.CorruptUpload(regtest.BlobUpload()).Times(1))
	c := &http.Client{}
	base := "http://" + p.Host
	upload := func() int {
		resp, err := c.Post(base+"/v2/x/blobs/uploads/", "", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		loc := resp.Header.Get("Location")
		if !strings.HasPrefix(loc, "http") {
			loc = base + loc
		}
		sep := "?"
		if strings.Contains(loc, "?") {
			sep = "&"
		}
		put, _ := http.NewRequest(http.MethodPut, loc+sep+"digest=sha256:"+sha256hex(blob), strings.NewReader(blob))
		resp, err = c.Do(put)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := upload(); code != http.StatusBadRequest {
		t.Fatalf("corrupted upload: status %d, want 400", code)
	}
	if r.Exists(t, "x", "blobs", "sha256:"+sha256hex(blob)) {
		t.Fatal("the registry kept a corrupted blob")
	}
	if code := upload(); code != http.StatusCreated {
		t.Fatalf("second upload: status %d", code)
	}
	if n := p.Injected(); n != 1 {
		t.Errorf("%d faults injected, want 1 (the POST has no body to corrupt)", n)
	}
}
