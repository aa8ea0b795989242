// Package gomod checks the Go modules a build context pins, so that every
// dependency inside an image is proven, not only the image as a whole.
//
// Scan reads every go.sum of a build context and the vendor/modules.txt
// beside it: each module version with its h1 hashes (of the module zip
// and of its go.mod) and, for a vendored module, the h1 hash of the files
// vendored. Verify then proves each go.sum line against the Go checksum
// database (sum.golang.org, reached through the module proxy's
// /sumdb/sum.golang.org/ endpoint) with golang.org/x/mod/sumdb: every
// record with its inclusion proof in a signed tree head, every tree head
// consistent with the one verified before (kept in the lock). A go.sum line
// the database contradicts is refused, naming the module. A vendored module
// is compared file by file with the module zip the proxy serves, itself
// checked against the database's hash: a vendored file that was edited,
// added or is missing from the module is refused, naming the module and
// the file.
//
// The package never prints; it reaches the network only through the proxy
// it is given.
package gomod
