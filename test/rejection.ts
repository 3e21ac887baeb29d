// The error a promise rejects with, for tests that check its code and details field by field
// (fails the test when the promise resolves instead).
export async function errorOf(
  promise: Promise<unknown>,
): Promise<{ code: string; message: string; details: Record<string, unknown> }> {
  try {
    await promise;
  } catch (error) {
    return error as { code: string; message: string; details: Record<string, unknown> };
  }
  throw new Error('expected a rejection');
}
