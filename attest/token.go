package attest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/twinforge/twinforge/internal/jwtclaims"
)

// DefaultAudience is the audience Sigstore's Fulcio expects identity tokens
// to be issued for.
const DefaultAudience = "sigstore"

// ErrInvalidIDToken is wrapped by errors about an identity token that
// cannot be used: missing, malformed, expired or for another audience.
var ErrInvalidIDToken = errors.New("invalid identity token")

// ErrNoIDToken is returned by IDTokenFromEnv when no source has a token.
var ErrNoIDToken = fmt.Errorf("%w: no identity token: give --identity-token-file, set SIGSTORE_ID_TOKEN, or run in GitHub Actions with `permissions: id-token: write`", ErrInvalidIDToken)

// TokenOption configures IDTokenFromEnv.
type TokenOption func(*tokenOptions)

type tokenOptions struct {
	explicit string
	file     string
	audience string
	client   *http.Client
	getenv   func(string) string
}

// WithIdentityToken gives the token explicitly (the --identity-token flag);
// it wins over every other source. The default value is "" (none).
func WithIdentityToken(token string) TokenOption {
	return func(o *tokenOptions) { o.explicit = token }
}

// WithIdentityTokenFile reads the token from a file (the
// --identity-token-file flag), which keeps it out of the process arguments
// that any user of the machine can read. It comes after WithIdentityToken
// and before every other source; a file that cannot be read, or holds no
// token, is an error. The default value is "" (none).
func WithIdentityTokenFile(path string) TokenOption {
	return func(o *tokenOptions) { o.file = path }
}

// WithTokenAudience sets the audience requested from the GitHub Actions
// token endpoint. The default value is DefaultAudience.
func WithTokenAudience(aud string) TokenOption {
	return func(o *tokenOptions) { o.audience = aud }
}

// WithTokenHTTPClient sets the client for the GitHub Actions token
// endpoint. The default value is a client with a 30 second timeout.
func WithTokenHTTPClient(c *http.Client) TokenOption {
	return func(o *tokenOptions) { o.client = c }
}

// IDTokenFromEnv finds the OIDC identity token to sign with, in this order:
// the explicit token (WithIdentityToken, i.e. --identity-token), the token
// file (WithIdentityTokenFile), the SIGSTORE_ID_TOKEN environment variable,
// then the GitHub Actions token
// endpoint (ACTIONS_ID_TOKEN_REQUEST_URL with the bearer token
// ACTIONS_ID_TOKEN_REQUEST_TOKEN, for the audience "sigstore"). It returns
// ErrNoIDToken when none applies.
func IDTokenFromEnv(ctx context.Context, opts ...TokenOption) (string, error) {
	o := &tokenOptions{
		audience: DefaultAudience,
		client:   &http.Client{Timeout: 30 * time.Second},
		getenv:   os.Getenv,
	}
	for _, opt := range opts {
		opt(o)
	}
	if t := strings.TrimSpace(o.explicit); t != "" {
		return t, nil
	}
	if o.file != "" {
		data, err := os.ReadFile(o.file)
		if err != nil {
			return "", fmt.Errorf("%w: reading the identity token file: %w", ErrInvalidIDToken, err)
		}
		t := strings.TrimSpace(string(data))
		if t == "" {
			return "", fmt.Errorf("%w: the identity token file %s is empty", ErrInvalidIDToken, o.file)
		}
		return t, nil
	}
	if t := strings.TrimSpace(o.getenv("SIGSTORE_ID_TOKEN")); t != "" {
		return t, nil
	}
	reqURL, reqToken := o.getenv("ACTIONS_ID_TOKEN_REQUEST_URL"), o.getenv("ACTIONS_ID_TOKEN_REQUEST_TOKEN")
	if reqURL == "" || reqToken == "" {
		return "", ErrNoIDToken
	}
	t, err := githubActionsToken(ctx, o.client, reqURL, reqToken, o.audience)
	if err != nil {
		return "", fmt.Errorf("getting an identity token from GitHub Actions: %w", err)
	}
	return t, nil
}

func githubActionsToken(ctx context.Context, client *http.Client, reqURL, bearer, audience string) (string, error) {
	u, err := url.Parse(reqURL)
	if err != nil {
		return "", fmt.Errorf("ACTIONS_ID_TOKEN_REQUEST_URL: %w", err)
	}
	q := u.Query()
	q.Set("audience", audience)
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "bearer "+bearer)
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("token endpoint returned %s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	var out struct {
		Value string `json:"value"`
	}
	if err := json.Unmarshal(body, &out); err != nil || out.Value == "" {
		return "", fmt.Errorf("token endpoint returned no token (%d bytes)", len(body))
	}
	return out.Value, nil
}

// tokenClaims are the claims of an identity token the signer looks at
// before sending it to Fulcio, which verifies it for real.
type tokenClaims struct {
	jwt.Claims
	Email string `json:"email"`
}

// checkIDToken decodes a JWT without verifying its signature (Fulcio does)
// to refuse early, with a clear error, a token Fulcio would refuse.
func checkIDToken(token, audience string, now time.Time) (*tokenClaims, error) {
	var c tokenClaims
	if err := jwtclaims.Unverified(token, &c); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidIDToken, err)
	}
	switch {
	case c.Issuer == "":
		return nil, fmt.Errorf("%w: no issuer (iss)", ErrInvalidIDToken)
	case c.Subject == "" && c.Email == "":
		return nil, fmt.Errorf("%w: no subject (sub) or email", ErrInvalidIDToken)
	case c.Expiry == nil:
		return nil, fmt.Errorf("%w: no expiry (exp)", ErrInvalidIDToken)
	}
	exp := c.Expiry.Time()
	if !now.Before(exp) {
		return nil, fmt.Errorf("%w: the token from %s expired at %s (%s ago); get a fresh one", ErrInvalidIDToken, c.Issuer, exp.UTC().Format(time.RFC3339), now.Sub(exp).Round(time.Second))
	}
	if !c.Audience.Contains(audience) {
		return nil, fmt.Errorf("%w: the token is for audience %q, Fulcio needs %q", ErrInvalidIDToken, []string(c.Audience), audience)
	}
	return &c, nil
}
