// The desktop app's processes and their activity, from /proc (footprint.mjs, usb-device.mjs).
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { basename } from 'node:path';

/** Clock ticks per second (CPU times in /proc are in ticks). */
export const TICK = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim());

/** The app process WebKitWebDriver started (the newest running APP) and its descendants. */
export function appProcesses(APP) {
  const all = readdirSync('/proc').filter((p) => /^\d+$/.test(p));
  const stat = (pid) => {
    try {
      const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
      return { pid: Number(pid), ppid: Number(fields[1]), start: Number(fields[19]) };
    } catch {
      return null;
    }
  };
  const stats = all.map(stat).filter(Boolean);
  const exe = (pid) => {
    try {
      return execFileSync('readlink', [`/proc/${pid}/exe`]).toString().trim();
    } catch {
      return '';
    }
  };
  const apps = stats.filter((s) => basename(exe(s.pid)) === basename(APP)).sort((a, b) => b.start - a.start);
  if (!apps.length) throw new Error(`no running ${APP}`);
  const found = [apps[0].pid];
  for (let i = 0; i < found.length; i += 1) {
    for (const s of stats) if (s.ppid === found[i]) found.push(s.pid);
  }
  return found;
}

/** CPU ticks of `pid` and the context switches (voluntary + not) of each of its threads. */
export function activity(pid) {
  const switches = new Map();
  for (const task of readdirSync(`/proc/${pid}/task`)) {
    let n = 0;
    try {
      const status = readFileSync(`/proc/${pid}/task/${task}/status`, 'utf8');
      for (const m of status.matchAll(/^(?:non)?voluntary_ctxt_switches:\s+(\d+)$/gm)) n += Number(m[1]);
    } catch {
      continue; // the thread ended meanwhile
    }
    switches.set(task, n);
  }
  const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const comm = text.slice(text.indexOf('(') + 1, text.lastIndexOf(')'));
  return { pid, comm, ticks: Number(fields[11]) + Number(fields[12]), switches };
}

