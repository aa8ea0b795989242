// Package workercert makes and reads the certificates of twinforge's build
// workers: a certificate authority of one worker pool, a server
// certificate for each worker and client certificates for the twinforge
// processes that send builds.
//
// Every certificate carries an identity, a SPIFFE ID in its URI subject
// alternative name (spiffe://twinforge/workers/POOL/NAME for a worker,
// spiffe://twinforge/clients/POOL/NAME for a client), so that a worker is
// known by more than its address: twinforge checks that the worker it
// dialed presents the identity it expects (isolation.TLS.Identity) and
// records it in the provenance. Worker certificates may serve TLS only,
// client certificates may only authenticate a client: buildkitd refuses a
// worker's certificate from a client, twinforge a client's from a worker.
//
// The CA's private key never leaves the machine that made it (the deployer
// of the pool); workers receive only their own key and the CA certificate.
//
// IssueRequest is `twinforge workers certs` as one call: it checks what to
// issue (errors wrapping ErrInvalidRequest) and issues it (IssueFiles).
package workercert
