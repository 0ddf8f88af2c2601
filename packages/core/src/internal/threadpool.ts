import { availableCores } from './cores.js';

/**
 * libuv's thread pool (4 threads unless `UV_THREADPOOL_SIZE` says otherwise) runs the image
 * processor's decodes (sharp) and file work: with 4, a 16-core server decodes 4 images at a time.
 * Sized to the cores here (`availableCores`: the CPU quota included) unless the environment sets
 * it. libuv reads the variable when the pool is first used, so the CLI imports this module before
 * anything else.
 */
process.env['UV_THREADPOOL_SIZE'] ??= String(Math.min(128, Math.max(4, availableCores())));
