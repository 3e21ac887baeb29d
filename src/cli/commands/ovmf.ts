import type { Command } from '../context.js';
import { OvmfBuildError } from '../../core/errors.js';

export const command: Command = {
  name: 'ovmf',
  summary: 'not implemented yet',
  usage: 'ovmf-build ovmf',
  run() {
    return Promise.reject(new OvmfBuildError('E_NOT_IMPLEMENTED', '`ovmf` is not implemented yet'));
  },
};
