// Engine discovery (the testcontainers-node order): DOCKER_HOST, the rootful
// Docker socket, the rootful Podman socket, the rootless Podman socket. Each
// candidate is pinged (GET /_ping, then GET /version) with a short timeout.
import http from 'node:http';
import path from 'node:path';

/** Docker Engine API 1.40 (Docker 19.03, Podman >= 2) has wait?condition=next-exit, PidsLimit and /build with buildargs. */
export const MINIMUM_API_VERSION = '1.40';

export interface EngineEndpoint {
  /** 'DOCKER_HOST' | 'docker-rootful' | 'podman-rootful' | 'podman-rootless' | 'podman-private-service' */
  readonly source: string;
  readonly socketPath?: string;
  readonly host?: string;
  readonly port?: number;
  /** Human-readable address for messages and EngineInfo.socketPath. */
  readonly address: string;
}

export interface EngineVersion {
  readonly kind: 'docker' | 'podman';
  readonly version: string;
  readonly apiVersion: string;
}

export type ProbeOutcome =
  | { readonly status: 'ok'; readonly version: EngineVersion }
  | { readonly status: 'too-old'; readonly version: EngineVersion }
  | { readonly status: 'permission-denied'; readonly detail: string }
  | { readonly status: 'unreachable'; readonly detail: string };

/**
 * The candidates in discovery order for this environment and platform.
 * `fileSystemRoot` prefixes the well-known rootful socket paths (tests pass a temp dir).
 */
export function engineCandidates(
  env: NodeJS.ProcessEnv,
  platform: NodeJS.Platform,
  fileSystemRoot = '/',
): EngineEndpoint[] {
  const candidates: EngineEndpoint[] = [];
  const dockerHost = env['DOCKER_HOST'];
  if (dockerHost !== undefined && dockerHost !== '') {
    candidates.push(parseDockerHost(dockerHost));
  }
  if (platform === 'win32') {
    return candidates;
  }
  const at = (p: string): string => path.join(fileSystemRoot, p);
  candidates.push({
    source: 'docker-rootful',
    socketPath: at('/var/run/docker.sock'),
    address: at('/var/run/docker.sock'),
  });
  if (platform === 'linux') {
    candidates.push({
      source: 'podman-rootful',
      socketPath: at('/run/podman/podman.sock'),
      address: at('/run/podman/podman.sock'),
    });
  }
  const runtimeDir = env['XDG_RUNTIME_DIR'];
  if (runtimeDir !== undefined && runtimeDir !== '') {
    const socketPath = path.join(runtimeDir, 'podman', 'podman.sock');
    candidates.push({ source: 'podman-rootless', socketPath, address: socketPath });
  }
  return candidates;
}

/** Parses `unix:///path` or `tcp://host:port` (plain HTTP; TLS is not supported). */
export function parseDockerHost(value: string): EngineEndpoint {
  if (value.startsWith('unix://')) {
    const socketPath = value.slice('unix://'.length);
    if (!socketPath.startsWith('/')) {
      throw new TypeError(`Expected \`DOCKER_HOST\` to be unix:///absolute/path, got \`${value}\``);
    }
    return { source: 'DOCKER_HOST', socketPath, address: value };
  }
  if (value.startsWith('tcp://') || value.startsWith('http://')) {
    const url = new URL(value.replace(/^tcp:/, 'http:'));
    return { source: 'DOCKER_HOST', host: url.hostname, port: Number(url.port || 2375), address: value };
  }
  throw new TypeError(`Expected \`DOCKER_HOST\` to start with unix:// or tcp://, got \`${value}\``);
}

function request(
  endpoint: EngineEndpoint,
  urlPath: string,
  timeoutMs: number,
): Promise<{ statusCode: number; body: string; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        method: 'GET',
        path: urlPath,
        // A fresh connection per probe: a pooled keep-alive one would answer for a socket that is gone.
        agent: false,
        timeout: timeoutMs,
        ...(endpoint.socketPath === undefined
          ? { host: endpoint.host, port: endpoint.port }
          : { socketPath: endpoint.socketPath }),
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          // /_ping and /version are a few hundred bytes; anything huge is not an engine.
          if (size > 1_048_576) {
            req.destroy(new Error('response too large'));
            return;
          }
          chunks.push(chunk);
        });
        res.on('end', () =>
          resolve({
            statusCode: res.statusCode ?? 0,
            body: Buffer.concat(chunks).toString('utf8'),
            headers: res.headers,
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}

/** Compares dotted versions numerically ('1.41' > '1.9'). */
export function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map((part) => Number.parseInt(part, 10) || 0);
  const pb = b.split('.').map((part) => Number.parseInt(part, 10) || 0);
  for (let i = 0; i < Math.max(pa.length, pb.length); i += 1) {
    const diff = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (diff !== 0) {
      return Math.sign(diff);
    }
  }
  return 0;
}

/**
 * Engine and API version from the /_ping headers when they say enough
 * (Podman: Libpod-Api-Version; Docker: Server: Docker/x), saving /version.
 */
export function versionFromPingHeaders(headers: http.IncomingHttpHeaders): EngineVersion | undefined {
  const apiVersion = headers['api-version'];
  if (typeof apiVersion !== 'string' || apiVersion === '') {
    return undefined;
  }
  const libpod = headers['libpod-api-version'];
  if (typeof libpod === 'string' && libpod !== '') {
    return { kind: 'podman', version: libpod, apiVersion };
  }
  const docker = /^Docker\/(\S+)/.exec(String(headers['server'] ?? ''));
  return docker?.[1] === undefined ? undefined : { kind: 'docker', version: docker[1], apiVersion };
}

/**
 * Pings one endpoint; never throws. `/_ping` is cheap and bounded by
 * `pingTimeoutMs`; Podman 4.3 takes about 2 s to answer `/version` (measured),
 * so once the ping answered, `/version` gets `versionTimeoutMs`.
 */
export async function probeEngine(
  endpoint: EngineEndpoint,
  pingTimeoutMs: number,
  versionTimeoutMs = 15_000,
): Promise<ProbeOutcome> {
  try {
    const ping = await request(endpoint, '/_ping', pingTimeoutMs);
    if (ping.statusCode !== 200) {
      return { status: 'unreachable', detail: `GET /_ping answered HTTP ${ping.statusCode}` };
    }
    const fromPing = versionFromPingHeaders(ping.headers);
    if (fromPing !== undefined) {
      return compareVersions(fromPing.apiVersion, MINIMUM_API_VERSION) < 0
        ? { status: 'too-old', version: fromPing }
        : { status: 'ok', version: fromPing };
    }
    const versionResponse = await request(endpoint, '/version', Math.max(pingTimeoutMs, versionTimeoutMs));
    if (versionResponse.statusCode !== 200) {
      return { status: 'unreachable', detail: `GET /version answered HTTP ${versionResponse.statusCode}` };
    }
    const parsed = JSON.parse(versionResponse.body) as {
      Version?: unknown;
      ApiVersion?: unknown;
      Components?: { Name?: unknown; Version?: unknown }[];
    };
    const podman = (parsed.Components ?? []).find(
      (c) => typeof c.Name === 'string' && /podman/i.test(c.Name),
    );
    const version: EngineVersion = {
      kind: podman === undefined ? 'docker' : 'podman',
      version: String(podman?.Version ?? parsed.Version ?? 'unknown'),
      apiVersion: String(parsed.ApiVersion ?? '0'),
    };
    if (compareVersions(version.apiVersion, MINIMUM_API_VERSION) < 0) {
      return { status: 'too-old', version };
    }
    return { status: 'ok', version };
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const detail = error instanceof Error ? error.message : String(error);
    if (code === 'EACCES' || code === 'EPERM') {
      return { status: 'permission-denied', detail };
    }
    return { status: 'unreachable', detail };
  }
}
