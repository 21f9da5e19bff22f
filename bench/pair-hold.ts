// scratch: hold a pair for N seconds, print pids (not committed)
import { createLab } from '../test/support/lab';
import { scratchDir } from '../test/support/vigil';
import { VIGIL_AGGRESSIVE, VIGIL_DEFAULT, soleMaster, startPair } from './lib/ha';
import { pollUntil } from './lib/common';
async function main() {
  const cfg = process.argv[2] === 'default' ? VIGIL_DEFAULT : VIGIL_AGGRESSIVE;
  const secs = Number(process.argv[3] ?? 60);
  const lab = await createLab({ hosts: ['a', 'b'] });
  const nodes = startPair(cfg, lab.host('a'), lab.host('b'), { haIp: lab.freeIp(0), dir: scratchDir('pairhold') });
  try {
    await pollUntil(() => soleMaster(nodes), 60_000, 50);
    await new Promise((r) => setTimeout(r, 5000));
    console.log(JSON.stringify(nodes.map((n) => ({ role: n.role, pid: n.pid }))));
    await new Promise((r) => setTimeout(r, secs * 1000));
  } finally {
    for (const n of nodes) await n.stop?.();
    await lab.destroy();
  }
}
void main();
