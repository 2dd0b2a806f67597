// /proc helpers shared by the bench scripts (Linux only; no ps needed).
import { readFileSync, readdirSync } from "node:fs";

/** { pid, ppid, comm } of every process, skipping those that vanish while we look. */
function processes() {
  const out = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, "utf8");
      // pid (comm) state ppid ...: comm may contain spaces, so split after the last ')'.
      const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      const comm = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
      out.push({ pid: Number(name), ppid: Number(rest[1]), comm });
    } catch {
      // the process went away while we looked
    }
  }
  return out;
}

/** The direct children of `pid`. */
export function childrenOf(pid) {
  return processes().filter((p) => p.ppid === pid);
}

/** Every descendant of `pid` (children, grandchildren, ...). */
export function descendantsOf(pid) {
  const all = processes();
  const out = [];
  const walk = (parent) => {
    for (const p of all) {
      if (p.ppid === parent) {
        out.push(p);
        walk(p.pid);
      }
    }
  };
  walk(pid);
  return out;
}

/** The workerd child of `pid` (Miniflare's), looking one level further for a wrapper. */
export function findWorkerd(pid) {
  const found = descendantsOf(pid).find((p) => p.comm.startsWith("workerd"));
  return found ? found.pid : null;
}

/** The command line of `pid` as an array (empty when it is gone). */
export function cmdline(pid) {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter(Boolean);
  } catch {
    return [];
  }
}

/**
 * utime+stime of `pid` in clock ticks (fields 14 and 15 of stat(5)), all threads, the
 * exited ones included. Coarse (10 ms ticks): good over thousands of requests.
 */
export function cpuTicks(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // After "pid (comm) ": state=0 ppid=1 ... utime=11 stime=12.
  return Number(fields[11]) + Number(fields[12]);
}

/**
 * CPU time of `pid` in nanoseconds: the sum of its live threads' schedstat run time.
 * Fine-grained, for single requests (cold start); misses threads that exited, so it is
 * read around short windows only. null when the kernel does not keep schedstats.
 */
export function cpuNanos(pid) {
  let total = 0;
  let seen = false;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      total += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, "utf8").split(" ")[0]);
      seen = true;
    } catch {
      // the thread exited while we looked
    }
  }
  return seen ? total : null;
}

/** Resident set size of `pid` in KiB (VmRSS of status(5)); null when it is gone. */
export function rssKiB(pid) {
  try {
    const m = readFileSync(`/proc/${pid}/status`, "utf8").match(/^VmRSS:\s+(\d+)\s+kB/m);
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}
