package distribute

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

var (
	// ErrVerification means content did not match its digest: a blob of an
	// OCI layout, or what a registry returned when read back after a push
	// or a copy. Nothing that failed it is tagged.
	ErrVerification = errors.New("verification failed")

	// ErrDigestRequired means a reference names an image by tag where only a
	// digest is accepted: replication copies exactly one manifest, and a tag
	// can move under it.
	ErrDigestRequired = errors.New("a digest reference (NAME@sha256:...) is required")

	// ErrInsecure means plain HTTP was refused: for any host without
	// WithInsecureLoopbackUnsafe, and for hosts that are not loopback
	// with it.
	ErrInsecure = errors.New("insecure registry refused")
)

// explain adds what to do about the failures users run into most.
func explain(err error) error {
	if err == nil {
		return nil
	}
	var terr *transport.Error
	if errors.As(err, &terr) {
		switch terr.StatusCode {
		case http.StatusUnauthorized:
			return fmt.Errorf("%w (the registry refused the credentials: check the Docker config, $DOCKER_CONFIG/config.json, or its credential helper)", err)
		case http.StatusForbidden:
			return fmt.Errorf("%w (the credentials lack permission for this repository)", err)
		}
	}
	var uerr x509.UnknownAuthorityError
	if errors.As(err, &uerr) {
		return fmt.Errorf("%w (trust the registry's CA with WithCACert / --ca-cert)", err)
	}
	return err
}
