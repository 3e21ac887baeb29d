import type { Command } from '../context.js';
import { OvmfBuildError } from '../../core/errors.js';

export const command: Command = {
  name: 'extract',
  summary: 'not implemented yet',
  usage: 'ovmf-build extract',
  run() {
    return Promise.reject(new OvmfBuildError('E_NOT_IMPLEMENTED', '`extract` is not implemented yet'));
  },
};
