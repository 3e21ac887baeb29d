// `ovmf-build nightly --print-systemd`: a service and a timer unit that run the nightly as the
// user (systemctl --user), whose Podman, cache, state and signing key it uses. Persistent=true
// (systemd.timer(5)) runs a night missed while the machine was off at the next boot.
export interface SystemdUnitsOptions {
  /** The command and its arguments; [0] must be an absolute path (systemd.service(5), ExecStart). */
  readonly execStart: readonly string[];
  readonly workingDirectory: string;
  /** systemd.time(7) calendar event. @default '*-*-* 02:30:00' */
  readonly onCalendar?: string;
}

export interface SystemdUnits {
  readonly serviceName: string;
  readonly timerName: string;
  readonly service: string;
  readonly timer: string;
}

export const SERVICE_NAME = 'ovmf-build-nightly.service';
export const TIMER_NAME = 'ovmf-build-nightly.timer';

/**
 * One ExecStart word: `%` is a specifier and `$` a variable in unit files (systemd.unit(5),
 * systemd.service(5) "Command lines"), so both are doubled; a word with blanks, quotes or
 * backslashes is double-quoted with C-style escapes.
 */
export function quoteExecWord(word: string): string {
  const escaped = word.replace(/%/g, '%%').replace(/\$/g, '$$$$');
  return /[\s"'\\;]/.test(escaped) || escaped === ''
    ? `"${escaped.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`
    : escaped;
}

export function renderSystemdUnits(options: SystemdUnitsOptions): SystemdUnits {
  const service = [
    '[Unit]',
    'Description=ovmf-build nightly: build, verify and publish OVMF for every recipe',
    '',
    '[Service]',
    'Type=oneshot',
    `WorkingDirectory=${options.workingDirectory.replace(/%/g, '%%')}`,
    `ExecStart=${options.execStart.map(quoteExecWord).join(' ')}`,
    // A build is CPU-heavy; the machine stays usable while it runs.
    'Nice=10',
    'IOSchedulingClass=idle',
    '',
  ].join('\n');
  const timer = [
    '[Unit]',
    `Description=Run ${SERVICE_NAME} every night`,
    '',
    '[Timer]',
    `OnCalendar=${options.onCalendar ?? '*-*-* 02:30:00'}`,
    'Persistent=true',
    'RandomizedDelaySec=15min',
    `Unit=${SERVICE_NAME}`,
    '',
    '[Install]',
    'WantedBy=timers.target',
    '',
  ].join('\n');
  return { serviceName: SERVICE_NAME, timerName: TIMER_NAME, service, timer };
}
