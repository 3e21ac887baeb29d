// A small variant template (src/edk2/variant-templates.ts) for unit tests of the template
// file, store and session: OVMF.fd is OVMF_VARS.fd then OVMF_CODE.fd, as in a real build, so it
// can be stored; each image is filled with its own byte so a mix-up shows.
import type { VariantTemplate } from '../src/edk2/variant-templates.js';

export function smallTemplate(jobId: string, fill = 1, sizes = { code: 2048, vars: 512 }): VariantTemplate {
  const code = new Uint8Array(sizes.code).fill(fill);
  const vars = new Uint8Array(sizes.vars).fill(fill + 1);
  const combined = new Uint8Array(sizes.vars + sizes.code);
  combined.set(vars, 0);
  combined.set(code, sizes.vars);
  return {
    code,
    vars,
    combined,
    gop: new Uint8Array(10).fill(3),
    vbt: new Uint8Array(20).fill(4),
    helperDrivers: { igdAssignment: new Uint8Array(5).fill(5), gopPolicy: new Uint8Array(6).fill(6) },
    jobId,
    builder: { id: 'sha256:builder', ref: 'localhost/ovmf-build/edk2-builder:0' },
    compiled: `compiled-${jobId}`,
  };
}
