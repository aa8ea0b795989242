package rebuild

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"time"
)

// idlestCPU is the CPU that was idle longest over a short sample of
// /proc/stat, of those this process may run on: the rebuild's one CPU.
// Which CPU does not matter to the variation (the steps see one CPU
// instead of all), but on a machine shared with other builds a fixed CPU 0
// is the one every rebuild crowds onto. It is 0 when nothing can be read.
func idlestCPU() int {
	first := cpuIdle()
	time.Sleep(100 * time.Millisecond)
	second := cpuIdle()
	best, bestIdle := 0, int64(-1)
	for cpu, idle := range second {
		before, ok := first[cpu]
		if !ok {
			continue
		}
		if d := idle - before; d > bestIdle || (d == bestIdle && cpu < best) {
			best, bestIdle = cpu, d
		}
	}
	return best
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
