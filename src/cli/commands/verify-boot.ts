import type { Command } from '../context.js';
import { OvmfBuildError } from '../../core/errors.js';

export const command: Command = {
  name: 'verify-boot',
  summary: 'not implemented yet',
  usage: 'ovmf-build verify-boot',
  run() {
    return Promise.reject(new OvmfBuildError('E_NOT_IMPLEMENTED', '`verify-boot` is not implemented yet'));
  },
};
