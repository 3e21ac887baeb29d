// A process that starts two shells and waits to be killed (src/core/exec-path.test.ts): one
// through diesWithParentTree, which mounts a tmpfs on the directory given and starts a sleep in
// the background and one in the foreground (as debootstrap mounts and starts dpkg), and one
// through diesWithParent alone, the control, with the same two sleeps. Each sleep has a length
// of its own, so the test finds them by command line. It prints "ready" once both are started.
import { spawn } from 'node:child_process';
import { diesWithParent, diesWithParentTree } from '../src/core/exec-path.js';

const mountDir = process.argv[2] as string;
const tree = diesWithParentTree(
  'sh',
  ['-c', `mount -t tmpfs ovmf-build-test ${mountDir} && { sleep 311 & sleep 312; }`],
  process.env,
);
spawn(tree.command, [...tree.args], { stdio: 'ignore' });
const control = diesWithParent('sh', ['-c', 'sleep 313 & sleep 314'], process.env);
spawn(control.command, [...control.args], { stdio: 'ignore' });
process.stdout.write('ready\n');
setInterval(() => undefined, 60_000);
