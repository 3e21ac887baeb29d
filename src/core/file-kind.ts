// What a file that is not a regular file is, in words, for the messages of the input guard
// (fetch/read-input.ts) and the artifact reader (publish/safe-read.ts): one wording for both.

/** The type tests of fs.Stats and fs.Dirent (a structural type: core imports no fs). */
export interface FileTypeTests {
  isSymbolicLink(): boolean;
  isDirectory(): boolean;
  isFIFO(): boolean;
  isSocket(): boolean;
  isBlockDevice(): boolean;
  isCharacterDevice(): boolean;
}

/** "a symbolic link", "a directory", "a FIFO (named pipe)"... for anything but a regular file. */
export function fileKind(stats: FileTypeTests): string {
  if (stats.isSymbolicLink()) return 'a symbolic link';
  if (stats.isDirectory()) return 'a directory';
  if (stats.isFIFO()) return 'a FIFO (named pipe)';
  if (stats.isSocket()) return 'a socket';
  if (stats.isBlockDevice()) return 'a block device';
  if (stats.isCharacterDevice()) return 'a character device';
  return 'a special file';
}
