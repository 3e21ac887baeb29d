import type { Command } from '../context.js';
import { OvmfBuildError } from '../../core/errors.js';

export const command: Command = {
  name: 'cache',
  summary: 'not implemented yet',
  usage: 'ovmf-build cache',
  run() {
    return Promise.reject(new OvmfBuildError('E_NOT_IMPLEMENTED', '`cache` is not implemented yet'));
  },
};
