package regtest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Matcher selects the requests a Fault applies to.
type Matcher func(*http.Request) bool

var (
	blobPath     = regexp.MustCompile(`^/v2/.+/blobs/[a-z0-9]+:[a-f0-9]+$`)
	uploadPath   = regexp.MustCompile(`^/v2/.+/blobs/uploads/`)
	manifestPath = regexp.MustCompile(`^/v2/.+/manifests/[^/]+$`)
	referrerPath = regexp.MustCompile(`^/v2/.+/referrers/[^/]+$`)
)

// BlobGet matches GET /v2/<name>/blobs/<digest>.
func BlobGet() Matcher {
	return func(r *http.Request) bool { return r.Method == http.MethodGet && blobPath.MatchString(r.URL.Path) }
}

// BlobUpload matches the requests of a blob upload: POST, PATCH and PUT
// under /v2/<name>/blobs/uploads/.
func BlobUpload() Matcher {
	return func(r *http.Request) bool { return uploadPath.MatchString(r.URL.Path) && r.Method != http.MethodGet }
}

// BlobPatch matches the PATCH requests that carry blob data.
func BlobPatch() Matcher {
	return func(r *http.Request) bool { return r.Method == http.MethodPatch && uploadPath.MatchString(r.URL.Path) }
}

// ManifestGet matches GET /v2/<name>/manifests/<reference>.
func ManifestGet() Matcher {
	return func(r *http.Request) bool { return r.Method == http.MethodGet && manifestPath.MatchString(r.URL.Path) }
}

// ManifestPut matches PUT /v2/<name>/manifests/<reference>.
func ManifestPut() Matcher {
	return func(r *http.Request) bool { return r.Method == http.MethodPut && manifestPath.MatchString(r.URL.Path) }
}

// ReferrersGet matches GET /v2/<name>/referrers/<digest>.
func ReferrersGet() Matcher {
	return func(r *http.Request) bool { return r.Method == http.MethodGet && referrerPath.MatchString(r.URL.Path) }
}

// PathContains matches requests whose path contains s, e.g. a digest.
func PathContains(s string) Matcher {
	return func(r *http.Request) bool { return strings.Contains(r.URL.Path, s) }
}

// All matches requests all of ms match.
func All(ms ...Matcher) Matcher {
	return func(r *http.Request) bool {
		for _, m := range ms {
			if !m(r) {
				return false
			}
		}
		return true
	}
}

// Fault is what the proxy does to a matching request instead of passing it
// through unchanged. Faults are tried in the order given; the first that
// matches and has uses left applies.
type Fault struct {
	name  string
	match Matcher
	times int // 0: every matching request
	kind  faultKind
	n     int64
	delay time.Duration
	fn    func([]byte) []byte
	stall chan struct{}
}

type faultKind int

const (
	kindDrop faultKind = iota
	kindStatus
	kindDelay
	kindCorrupt
	kindRewrite
	kindStall
	kindCorruptUpload
)

// Times limits a fault to the first n matching requests.
func (f Fault) Times(n int) Fault { f.times = n; return f }

// DropAfter breaks the connection of the first matching request after n
// bytes: of the request body when the request has one (an upload), else of
// the response body (the response headers are sent first, announcing the
// full length). A response no longer than n bytes is dropped whole.
func DropAfter(m Matcher, n int64) Fault {
	return Fault{name: fmt.Sprintf("drop after %d bytes", n), match: m, times: 1, kind: kindDrop, n: n}
}

// FailFirst answers the first n matching requests with status (500 when 0)
// and a registry-style error body, without passing them on.
func FailFirst(m Matcher, n, status int) Fault {
	if status == 0 {
		status = http.StatusInternalServerError
	}
	return Fault{name: fmt.Sprintf("status %d", status), match: m, times: n, kind: kindStatus, n: int64(status)}
}

// Delay holds every matching request for d before passing it on.
func Delay(m Matcher, d time.Duration) Fault {
	return Fault{name: "delay " + d.String(), match: m, kind: kindDelay, delay: d}
}

// Corrupt flips a byte in the middle of the body of every matching
// response with status 200, keeping its length and headers.
func Corrupt(m Matcher) Fault {
	return Fault{name: "corrupt", match: m, kind: kindCorrupt}
}

// CorruptUpload flips a byte in the middle of the body of every matching
// request that has one (a blob upload's PATCH or PUT; a request without a
// body does not count as a use), keeping its length,
// before passing it on: the registry gets other bytes than the client
// sent, as through a faulty link or proxy.
func CorruptUpload(m Matcher) Fault {
	return Fault{name: "corrupt upload", match: m, kind: kindCorruptUpload}
}

// Rewrite replaces the body of every matching response with status 200 by
// fn(body), fixing Content-Length and Docker-Content-Digest to match, as a
// registry serving other content than it was given would.
func Rewrite(m Matcher, fn func([]byte) []byte) Fault {
	return Fault{name: "rewrite", match: m, kind: kindRewrite, fn: fn}
}

// Stall holds every matching request until the client gives up or the
// proxy closes, never passing it on. The channel is closed when the first
// request stalls, so a test can interrupt the client at that point.
func Stall(m Matcher) (Fault, <-chan struct{}) {
	ch := make(chan struct{})
	return Fault{name: "stall", match: m, kind: kindStall, stall: ch}, ch
}

// Request is one request the proxy saw.
type Request struct {
	Method, Path, Query string
	Status              int    // 0 when the connection was dropped or stalled
	Fault               string // the fault applied, "" if none
}

// FaultProxy is a reverse proxy in front of a real registry.
type FaultProxy struct {
	// Host is the proxy's "127.0.0.1:PORT"; use it as the registry host.
	Host string

	target  *url.URL
	rp      *httputil.ReverseProxy
	tr      *http.Transport
	srv     *http.Server
	ctx     context.Context
	cancel  context.CancelFunc
	mu      sync.Mutex
	faults  []*Fault
	used    []int
	log     []Request
	stalled map[*Fault]bool
}

type ctxKey struct{}

// NewFaultProxy starts a proxy on a free loopback port in front of the
// plain-HTTP registry at target ("127.0.0.1:PORT"), stopped at cleanup.
// Requests keep the proxy's Host header, so the registry's upload Location
// URLs point back through the proxy.
func NewFaultProxy(t testing.TB, target string, faults ...Fault) *FaultProxy {
	t.Helper()
	u, err := url.Parse("http://" + target)
	if err != nil || u.Host == "" {
		t.Fatalf("fault proxy target %q: use HOST:PORT", target)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &FaultProxy{Host: l.Addr().String(), target: u, stalled: map[*Fault]bool{}}
	for i := range faults {
		f := faults[i]
		p.faults = append(p.faults, &f)
	}
	p.used = make([]int, len(p.faults))
	p.ctx, p.cancel = context.WithCancel(context.Background())
	p.tr = &http.Transport{Proxy: nil, DialContext: (&net.Dialer{}).DialContext, MaxIdleConnsPerHost: 16}
	p.rp = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(u)
			pr.Out.Host = pr.In.Host
		},
		Transport:      p.tr,
		ModifyResponse: p.modifyResponse,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			w.WriteHeader(http.StatusBadGateway)
		},
	}
	p.srv = &http.Server{Handler: http.HandlerFunc(p.serve), ReadHeaderTimeout: time.Minute}
	go func() { _ = p.srv.Serve(l) }()
	t.Cleanup(p.Close)
	return p
}

// Close stops the proxy, releasing stalled and delayed requests.
func (p *FaultProxy) Close() {
	p.cancel()
	_ = p.srv.Close()
	p.tr.CloseIdleConnections()
}

// Requests returns the requests seen so far, in order of completion.
func (p *FaultProxy) Requests() []Request {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Request(nil), p.log...)
}

// Count returns how many requests seen so far m matches.
func (p *FaultProxy) Count(m Matcher) int {
	n := 0
	for _, r := range p.Requests() {
		u := &url.URL{Path: r.Path, RawQuery: r.Query}
		if m(&http.Request{Method: r.Method, URL: u}) {
			n++
		}
	}
	return n
}

// Injected returns how many requests got a fault.
func (p *FaultProxy) Injected() int {
	n := 0
	for _, r := range p.Requests() {
		if r.Fault != "" {
			n++
		}
	}
	return n
}

func (p *FaultProxy) record(r *http.Request, status int, fault string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.log = append(p.log, Request{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Status: status, Fault: fault})
}

// pick returns the fault for a request, counting its use.
func (p *FaultProxy) pick(r *http.Request) *Fault {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, f := range p.faults {
		if f.times > 0 && p.used[i] >= f.times {
			continue
		}
		if f.kind == kindCorruptUpload && r.ContentLength == 0 && len(r.TransferEncoding) == 0 {
			continue // no body to corrupt: not a use
		}
		if f.match(r) {
			p.used[i]++
			return f
		}
	}
	return nil
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (p *FaultProxy) serve(w http.ResponseWriter, r *http.Request) {
	f := p.pick(r)
	if f == nil {
		p.forward(w, r, nil)
		return
	}
	switch f.kind {
	case kindStatus:
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(int(f.n))
		fmt.Fprintf(w, `{"errors":[{"code":"UNKNOWN","message":"injected by the regtest fault proxy","detail":"%s"}]}`, f.name)
		p.record(r, int(f.n), f.name)
	case kindDelay:
		t := time.NewTimer(f.delay)
		select {
		case <-t.C:
		case <-r.Context().Done():
		case <-p.ctx.Done():
		}
		t.Stop()
		p.forward(w, r, f)
	case kindStall:
		p.mu.Lock()
		if !p.stalled[f] {
			p.stalled[f] = true
			close(f.stall)
		}
		p.mu.Unlock()
		select {
		case <-r.Context().Done():
		case <-p.ctx.Done():
		}
		p.record(r, 0, f.name)
	case kindDrop:
		p.drop(w, r, f)
	case kindCorruptUpload:
		body, err := io.ReadAll(r.Body)
		if err != nil {
			w.WriteHeader(http.StatusBadGateway)
			p.record(r, http.StatusBadGateway, f.name)
			return
		}
		if len(body) > 0 {
			body[len(body)/2] ^= 0xff
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
		p.forward(w, r, f)
	default:
		p.forward(w, r, f)
	}
}

func (p *FaultProxy) forward(w http.ResponseWriter, r *http.Request, f *Fault) {
	sw := &statusWriter{ResponseWriter: w}
	if f != nil {
		r = r.WithContext(context.WithValue(r.Context(), ctxKey{}, f))
	}
	p.rp.ServeHTTP(sw, r)
	name := ""
	if f != nil {
		name = f.name
	}
	p.record(r, sw.status, name)
}

func (p *FaultProxy) modifyResponse(resp *http.Response) error {
	f, _ := resp.Request.Context().Value(ctxKey{}).(*Fault)
	if f == nil || (f.kind != kindCorrupt && f.kind != kindRewrite) || resp.StatusCode != http.StatusOK || resp.Request.Method == http.MethodHead {
		return nil
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	switch f.kind {
	case kindCorrupt:
		if len(body) > 0 {
			body[len(body)/2] ^= 0xff
		}
	case kindRewrite:
		body = f.fn(body)
		sum := sha256.Sum256(body)
		if resp.Header.Get("Docker-Content-Digest") != "" {
			resp.Header.Set("Docker-Content-Digest", "sha256:"+hex.EncodeToString(sum[:]))
		}
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	resp.ContentLength = int64(len(body))
	resp.Header.Set("Content-Length", strconv.Itoa(len(body)))
	return nil
}

// drop breaks the connection after n bytes of the request or response body.
func (p *FaultProxy) drop(w http.ResponseWriter, r *http.Request, f *Fault) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic("fault proxy: connection cannot be hijacked")
	}
	if r.ContentLength > 0 || len(r.TransferEncoding) > 0 {
		// An upload: take n bytes of it, then hang up.
		_, _ = io.CopyN(io.Discard, r.Body, f.n)
		conn, _, err := hj.Hijack()
		if err == nil {
			conn.Close()
		}
		p.record(r, 0, f.name)
		return
	}
	out := r.Clone(r.Context())
	out.RequestURI = ""
	out.URL.Scheme, out.URL.Host = p.target.Scheme, p.target.Host
	out.Host = r.Host
	resp, err := p.tr.RoundTrip(out)
	if err != nil {
		w.WriteHeader(http.StatusBadGateway)
		p.record(r, http.StatusBadGateway, f.name)
		return
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		w.WriteHeader(http.StatusBadGateway)
		p.record(r, http.StatusBadGateway, f.name)
		return
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		return
	}
	defer conn.Close()
	if int64(len(body)) > f.n {
		h := resp.Header.Clone()
		h.Del("Content-Length")
		h.Del("Transfer-Encoding")
		bw := bufio.NewWriter(conn)
		fmt.Fprintf(bw, "HTTP/1.1 %s\r\n", resp.Status)
		_ = h.Write(bw)
		fmt.Fprintf(bw, "Content-Length: %d\r\n\r\n", len(body))
		_, _ = bw.Write(body[:f.n])
		_ = bw.Flush()
	}
	p.record(r, 0, f.name)
}
