import type { Command } from '../context.js';
import { OvmfBuildError } from '../../core/errors.js';

export const command: Command = {
  name: 'verify',
  summary: 'not implemented yet',
  usage: 'ovmf-build verify',
  run() {
    return Promise.reject(new OvmfBuildError('E_NOT_IMPLEMENTED', '`verify` is not implemented yet'));
  },
};
