// Package hermetic implements twinforge's "lock every input" model.
//
// Before a build every input is named and pinned in a lock file
// (twinforge.lock, JSON): the build context (as a content digest and a
// per-file listing), the Dockerfile, every base image (by manifest digest and
// the place its content comes from), every remote URL and git repository the
// Dockerfile fetches, the target platform, SOURCE_DATE_EPOCH and the BuildKit
// version. The package creates locks ([Create]), reads and validates them
// ([Parse], [Load]), writes them byte-for-byte reproducibly
// ([Lock.Marshal]), checks a tree against a lock ([Check]), checks that a
// Dockerfile only uses pinned inputs ([AnalyzeDockerfile], [Lock.Verify]) and
// translates a lock into a BuildKit source policy that only admits the
// pinned inputs ([Lock.SourcePolicy]).
//
// For Go sources the lock also pins every module version each go.sum lists
// ([Lock.GoModules]); package hermetic/gomod proves them against the Go
// checksum database when [Request.VerifyModules] is set, and the tree head
// they were proven in is kept in [Lock.GoSumDB].
//
// [LockRun] is `twinforge lock` as one call: it checks the settings,
// relocks keeping what the existing lock recorded ([Request.Inherit]),
// creates and writes the lock or checks the tree against it, and says what
// it did; its errors say whether the settings ([ErrInvalidSettings]) or the
// tree ([ErrRefused]) are at fault.
//
// The package logs only the warning LockRun gives when it replaces a lock
// it cannot read; every failure is returned as an error wrapping one of the
// exported sentinel errors where one applies.
package hermetic
