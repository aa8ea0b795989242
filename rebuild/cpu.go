package rebuild

import (
	"bufio"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// rebuildCPUSet is the CPU set of a rebuild daemon, of the CPUs this
// process may run on: all but one, so that its steps see another CPU
// count than the build's, which has them all, while the two share the
// machine as two concurrent builds would. (Pinned to one CPU, a rebuild
// would compile at a fraction of the build's speed on any larger machine.)
// The CPU left out is the busiest of a short sample of /proc/stat, so that
// on two CPUs the rebuild gets the idlest; on a machine shared with other
// builds a fixed choice is the one every rebuild crowds onto. It is "" when
// there is no second CPU or nothing can be read.
func rebuildCPUSet() string {
	first := cpuIdle()
	time.Sleep(100 * time.Millisecond)
	second := cpuIdle()
	idle := map[int]int64{}
	for _, cpu := range allowedCPUs() {
		before, ok1 := first[cpu]
		after, ok2 := second[cpu]
		if ok1 && ok2 {
			idle[cpu] = after - before
		}
	}
	return cpuSetWithoutBusiest(idle)
}

// cpuSetWithoutBusiest lists, in taskset's form, every CPU of idle (CPU to
// idle time gained over a sample) but the one that gained the least; of
// equally busy CPUs the highest-numbered is left out.
func cpuSetWithoutBusiest(idle map[int]int64) string {
	if len(idle) < 2 {
		return ""
	}
	cpus := make([]int, 0, len(idle))
	for cpu := range idle {
		cpus = append(cpus, cpu)
	}
	slices.Sort(cpus)
	busiest := cpus[len(cpus)-1]
	for _, cpu := range cpus {
		if idle[cpu] < idle[busiest] {
			busiest = cpu
		}
	}
	var out []string
	for _, cpu := range cpus {
		if cpu != busiest {
			out = append(out, strconv.Itoa(cpu))
		}
	}
	return strings.Join(out, ",")
}

// allowedCPUs are the CPUs this process may run on (its affinity, which a
// cgroup or taskset may narrow).
func allowedCPUs() []int {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return nil
	}
	var out []int
	for cpu := range 1024 {
		if set.IsSet(cpu) {
			out = append(out, cpu)
		}
	}
	return out
}

// cpuIdle reads each CPU's idle and iowait time from /proc/stat.
func cpuIdle() map[int]int64 {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return nil
	}
	defer f.Close()
	out := map[int]int64{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 6 || !strings.HasPrefix(fields[0], "cpu") || fields[0] == "cpu" {
			continue
		}
		cpu, err := strconv.Atoi(strings.TrimPrefix(fields[0], "cpu"))
		if err != nil {
			continue
		}
		idle, _ := strconv.ParseInt(fields[4], 10, 64)
		iowait, _ := strconv.ParseInt(fields[5], 10, 64)
		out[cpu] = idle + iowait
	}
	return out
}
