package rebuild

// IdlestCPUForTest exposes idlestCPU to the tests of package rebuild_test.
var IdlestCPUForTest = idlestCPU
