package rebuild

// RebuildCPUSetForTest exposes rebuildCPUSet to the tests of package
// rebuild_test.
var RebuildCPUSetForTest = rebuildCPUSet
