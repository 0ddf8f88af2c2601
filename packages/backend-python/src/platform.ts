/** Triton's file name of a Python model in a version folder. */
export const MODEL_FILENAME = 'model.py';

/** `platform` in the metadata of every model this backend loads (Triton reports a Python model's backend as `python`). */
export const PYTHON_PLATFORM = 'python';
