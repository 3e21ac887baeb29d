import type { Command } from '../context.js';
import { OvmfBuildError } from '../../core/errors.js';

export const command: Command = {
  name: 'inspect',
  summary: 'not implemented yet',
  usage: 'ovmf-build inspect',
  run() {
    return Promise.reject(new OvmfBuildError('E_NOT_IMPLEMENTED', '`inspect` is not implemented yet'));
  },
};
