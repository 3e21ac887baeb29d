import type { Command } from '../context.js';
import { OvmfBuildError } from '../../core/errors.js';

export const command: Command = {
  name: 'cleanup',
  summary: 'not implemented yet',
  usage: 'ovmf-build cleanup',
  run() {
    return Promise.reject(new OvmfBuildError('E_NOT_IMPLEMENTED', '`cleanup` is not implemented yet'));
  },
};
