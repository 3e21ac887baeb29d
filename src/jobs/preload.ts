// The job pipeline loads its heavy modules (the container stack, the EDK2 build, the verifiers,
// the firmware parsers) the first time a job reaches them, which keeps a one-shot command's
// start short. Loading a module runs its top level on the thread, and for the container stack
// that is hundreds of milliseconds under load: a signal that arrives meanwhile waits for it. A
// long-lived worker loads them all once, before it takes a job, so no job blocks its thread this
// way and a stop (which hands the job back) is answered at once.

/** Loads every module the job pipeline imports on first use; resolves when all are evaluated. */
export async function preloadJobModules(): Promise<void> {
  await Promise.all([
    import('../cache/paths.js'),
    import('../container/index.js'),
    import('../edk2/source.js'),
    import('../edk2/build.js'),
    import('../fetch/download.js'),
    import('../formats/firmware-tree.js'),
    import('../formats/locate.js'),
    import('../formats/rom-chain.js'),
    import('../vendor/open-package.js'),
    import('../verify/structural.js'),
    import('../verify/accel.js'),
    import('../verify/qemu.js'),
    import('../verify/boot.js'),
    import('../verify/igd-modes.js'),
    import('../verify/boot-igd.js'),
    import('./rom.js'),
  ]);
}
