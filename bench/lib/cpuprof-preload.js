/*
 * Layer: bench support. Preloaded with `NODE_OPTIONS=--require …` by
 * bench/wakeups.ts --prof (node refuses --cpu-prof in NODE_OPTIONS): starts
 * the V8 sampling profiler in the daemon and writes a .cpuprofile into
 * $VIGIL_CPUPROF_DIR when the process exits. The main-thread inspector
 * session answers synchronously, so the profile is written inside 'exit'.
 */
'use strict';
const inspector = require('node:inspector');
const fs = require('node:fs');
const path = require('node:path');
const dir = process.env.VIGIL_CPUPROF_DIR;
if (dir) {
  const s = new inspector.Session();
  s.connect();
  s.post('Profiler.enable');
  s.post('Profiler.setSamplingInterval', { interval: Number(process.env.VIGIL_CPUPROF_US || 200) });
  s.post('Profiler.start');
  process.on('exit', () => {
    s.post('Profiler.stop', (err, r) => {
      if (!err) fs.writeFileSync(path.join(dir, `vigil-${process.pid}.cpuprofile`), JSON.stringify(r.profile));
    });
  });
}
// VIGIL_GCLOG=1: one stderr line per garbage collection (kind, ms), for bench/wakeups.ts --tail.
if (process.env.VIGIL_GCLOG) {
  const { PerformanceObserver, constants: c } = require('node:perf_hooks');
  const kinds = { [c.NODE_PERFORMANCE_GC_MAJOR]: 'major', [c.NODE_PERFORMANCE_GC_MINOR]: 'minor', [c.NODE_PERFORMANCE_GC_INCREMENTAL]: 'incremental', [c.NODE_PERFORMANCE_GC_WEAKCB]: 'weakcb' };
  new PerformanceObserver((l) => {
    for (const e of l.getEntries()) process.stderr.write(`gc ${kinds[e.detail?.kind] ?? e.detail?.kind} ${e.duration.toFixed(2)} ms at ${(e.startTime / 1000).toFixed(1)} s heap ${(process.memoryUsage().heapUsed / 1e6).toFixed(1)} MB\n`);
  }).observe({ entryTypes: ['gc'] });
}
// VIGIL_V8FLAGS='--flag …': V8 flags set at preload (for flags node refuses in NODE_OPTIONS).
if (process.env.VIGIL_V8FLAGS) require('node:v8').setFlagsFromString(process.env.VIGIL_V8FLAGS);
