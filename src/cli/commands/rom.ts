import type { Command } from '../context.js';
import { OvmfBuildError } from '../../core/errors.js';

export const command: Command = {
  name: 'rom',
  summary: 'not implemented yet',
  usage: 'ovmf-build rom',
  run() {
    return Promise.reject(new OvmfBuildError('E_NOT_IMPLEMENTED', '`rom` is not implemented yet'));
  },
};
