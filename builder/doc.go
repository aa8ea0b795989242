// Package builder turns a Dockerfile and its context into an OCI image
// layout on a BuildKit daemon, normalized so that the same inputs give the
// same manifest digest: SOURCE_DATE_EPOCH on the config and on every layer
// file's timestamp, OCI media types, gzip layers compressed the same way
// every time, no network in RUN steps, base images only from local OCI
// layouts, and a source policy that denies everything it does not allow.
//
// The manifest digest is the image's identity. The layout is written to a
// temporary directory beside its destination and renamed into place, so a
// failed build leaves nothing half written.
package builder
