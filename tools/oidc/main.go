// Command twinforge-oidc is the OpenID Connect issuer of twinforge's local
// Sigstore stack: github.com/oauth2-proxy/mockoidc serving discovery and JWKS
// under http://ADDR/oidc for Fulcio (client ID "sigstore"), plus
//
//	POST /mint?sub=S&email=E&aud=A&exp=DURATION&email_verified=BOOL
//
// which answers an ID token signed with the issuer's key for any identity:
// aud defaults to "sigstore", exp (a Go duration, negative for a token that
// has already expired) to 10m, email_verified to true.
package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/oauth2-proxy/mockoidc"
)

type idClaims struct {
	jwt.RegisteredClaims
	Email         string `json:"email,omitempty"`
	EmailVerified bool   `json:"email_verified"`
}

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "address to listen on")
	flag.Parse()
	if err := run(*addr); err != nil {
		fmt.Fprintln(os.Stderr, "twinforge-oidc:", err)
		os.Exit(1)
	}
}

func run(addr string) error {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return fmt.Errorf("generating the signing key: %w", err)
	}
	m, err := mockoidc.NewServer(key)
	if err != nil {
		return fmt.Errorf("creating the issuer: %w", err)
	}
	m.ClientID = "sigstore"
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listening: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc(mockoidc.DiscoveryEndpoint, m.Discovery)
	mux.HandleFunc(mockoidc.JWKSEndpoint, m.JWKS)
	mux.HandleFunc(mockoidc.AuthorizationEndpoint, m.Authorize)
	mux.HandleFunc(mockoidc.TokenEndpoint, m.Token)
	mux.HandleFunc(mockoidc.UserinfoEndpoint, m.Userinfo)
	mux.HandleFunc("POST /mint", func(w http.ResponseWriter, r *http.Request) {
		tok, err := mint(m, r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/jwt")
		fmt.Fprint(w, tok)
	})
	// mockoidc derives its issuer URL from Server.Addr.
	m.Server = &http.Server{Addr: ln.Addr().String(), Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintln(os.Stderr, "issuer", m.Issuer())

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- m.Server.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serving: %w", err)
	case <-ctx.Done():
		return m.Server.Shutdown(context.Background())
	}
}

func mint(m *mockoidc.MockOIDC, r *http.Request) (string, error) {
	q := r.URL.Query()
	sub, aud := q.Get("sub"), q.Get("aud")
	if sub == "" {
		return "", fmt.Errorf("sub is required")
	}
	if aud == "" {
		aud = m.ClientID
	}
	exp := 10 * time.Minute
	if s := q.Get("exp"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			return "", fmt.Errorf("parsing exp: %w", err)
		}
		exp = d
	}
	verified := true
	if s := q.Get("email_verified"); s != "" {
		v, err := strconv.ParseBool(s)
		if err != nil {
			return "", fmt.Errorf("parsing email_verified: %w", err)
		}
		verified = v
	}
	now := time.Now()
	iat := now
	if exp < 0 {
		iat = now.Add(exp - time.Minute) // issued before it expired
	}
	return m.Keypair.SignJWT(idClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    m.Issuer(),
			Subject:   sub,
			Audience:  jwt.ClaimStrings{aud},
			IssuedAt:  jwt.NewNumericDate(iat),
			NotBefore: jwt.NewNumericDate(iat),
			ExpiresAt: jwt.NewNumericDate(now.Add(exp)),
		},
		Email:         q.Get("email"),
		EmailVerified: verified,
	})
}
