// Package sigstack runs a real, private Sigstore stack on loopback for
// twinforge's tests and for `make demo`: an OpenID Connect issuer
// (bin/twinforge-oidc, over github.com/oauth2-proxy/mockoidc), Fulcio
// (bin/fulcio, ephemeral CA), an RFC 3161 timestamp authority
// (bin/timestamp-server, in-memory signer) and a Rekor v2 transparency log
// (bin/rekor-server, rekor-tiles on POSIX storage). `make sigstore-tools`
// builds the binaries from the modules pinned under tools/.
//
// Start launches the four servers as child processes on free 127.0.0.1
// ports, waits until each answers, and assembles a sigstore-go trusted root
// from what they serve (Fulcio's trust bundle, the TSA's certificate chain,
// Rekor's public key and log ID), so bundles signed against the stack verify
// offline:
//
//	st, err := sigstack.Start(ctx, t.TempDir())
//	...
//	defer st.Close()
//	tok, err := st.IDToken(ctx, sigstack.Claims{Subject: "ci@example.test", Email: "ci@example.test"})
//	// sign with sign.NewFulcio(&sign.FulcioOptions{BaseURL: st.FulcioURL()}),
//	// sign.NewTimestampAuthority(&sign.TimestampAuthorityOptions{URL: st.TimestampURL()}),
//	// sign.NewRekor(&sign.RekorOptions{BaseURL: st.RekorURL(), Version: 2});
//	// verify with verify.NewVerifier(st.TrustedRoot(), ...).
//
// Everything a stack writes lives in the directory given to Start: each
// server's log (oidc.log, fulcio.log, tsa.log, rekor.log), Fulcio's
// configuration, Rekor's signing key and tiles, trusted_root.json and
// signing_config.json. Close stops every process; the package never prints.
//
// The stack is for tests: the OIDC issuer mints a token for any identity on
// request, and the CA and TSA keys live only in memory.
package sigstack
