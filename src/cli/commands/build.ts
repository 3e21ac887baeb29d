import type { Command } from '../context.js';
import { OvmfBuildError } from '../../core/errors.js';

export const command: Command = {
  name: 'build',
  summary: 'not implemented yet',
  usage: 'ovmf-build build',
  run() {
    return Promise.reject(new OvmfBuildError('E_NOT_IMPLEMENTED', '`build` is not implemented yet'));
  },
};
