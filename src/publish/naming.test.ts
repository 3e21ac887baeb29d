import { describe, expect, it } from 'vitest';
import { generationArtifactName } from './naming.js';

describe('generationArtifactName', () => {
  it('names by platform and device, else by GOP family, never by VBT signature', () => {
    expect({
      device: generationArtifactName({
        platformKey: 'cml',
        deviceId: '9b41',
        gopFamilyKey: 'gen9',
        gopBuild: '1107',
      }),
      family: generationArtifactName({
        platformKey: null,
        deviceId: null,
        gopFamilyKey: 'gen9',
        gopBuild: '1107',
      }),
      buildOnly: generationArtifactName({
        platformKey: null,
        deviceId: null,
        gopFamilyKey: null,
        gopBuild: '1066',
      }),
      nothing: generationArtifactName({
        platformKey: null,
        deviceId: null,
        gopFamilyKey: null,
        gopBuild: null,
      }),
    }).toEqual({ device: 'cml-9b41-gop1107', family: 'gen9-gop1107', buildOnly: 'gop1066', nothing: 'ovmf' });
  });
});
