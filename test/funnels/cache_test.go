package funnels

import (
	"context"
	"os/exec"
	"testing"
	"time"

	"productanalytics/internal/stack"
)

// cacheScript drives cube/funnels.js's Funnels with a source it controls
// and prints what each step gives, one line each.
const cacheScript = `
const { Funnels } = require('./funnels');
const def = (target) => 'seconds_to_convert: 60\nsteps:\n  - {name: a, action: pageview, target: ' + target + '}\n';
let files = [{ name: 'a.yml', data: def('/a') }];
let failing = false;
let reads = 0;
const source = { describe: 'test', files: async () => { reads += 1; if (failing) throw new Error('unreachable'); return files; } };
const logs = [];
const f = new Funnels({ source, refreshMs: 200, log: (m) => logs.push(m) });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
// settle asks once (starting the read the set's age calls for), waits,
// with a deadline, until that read is over, and asks again.
const settle = async () => {
  const before = reads;
  await f.get('gitlab_project_1');
  const end = Date.now() + 10000;
  while (reads === before || f.entries.get('gitlab_project_1').reading) {
    if (Date.now() > end) throw new Error('the read of project 1 did not end within 10 s');
    await sleep(5);
  }
  return f.get('gitlab_project_1');
};
(async () => {
  const first = await f.get('gitlab_project_1');
  console.log('first', first.funnels.map((x) => x.name).join(','), first.version !== null);
  console.log('cached', (await f.get('gitlab_project_1')).version === first.version, reads);
  files = [{ name: 'a.yml', data: def('/b') }, { name: 'b.yml', data: def('/b') }];
  await sleep(250);
  const changed = await settle();
  console.log('changed', changed.funnels.map((x) => x.name).join(','), changed.version !== first.version);
  failing = true;
  await sleep(250);
  const kept = await settle();
  console.log('failing', kept.version === changed.version, logs.includes('Funnels unreadable'));
  failing = false;
  files = [];
  await sleep(5250);
  const gone = await settle();
  console.log('deleted', gone.funnels.length, gone.version);
  console.log('other', (await f.get('gitlab_project_2')).version, (await f.get('not_a_project')).version);
})().catch((e) => { console.error(e); process.exit(1); });
`

// TestCubeKeepsProjectsFunnels: Cube's set of a project is read on its
// first request, kept refreshMs, read again after in the background (a
// change gives a new version), kept when the source fails, and emptied
// when the files go.
func TestCubeKeepsProjectsFunnels(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", "-e", cacheScript)
	cmd.Dir = stack.CubeDir(root)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node: %v\n%s", err, out)
	}
	want := "first a true\ncached true 1\nchanged a,b true\nfailing true true\ndeleted 0 null\nother null null\n"
	if string(out) != want {
		t.Fatalf("got:\n%s\nwant:\n%s", out, want)
	}
}
