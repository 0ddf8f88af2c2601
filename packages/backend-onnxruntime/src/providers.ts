/**
 * What the installed onnxruntime-node can run on, checked before a session is created: ONNX
 * Runtime fails a session whose `executionProviders` names a provider that cannot load, with a raw
 * message ("OrtSessionOptionsAppendExecutionProvider_Cuda: Failed to load shared library"); the
 * probe says instead which files are missing and how to install them.
 *
 * onnxruntime-node's Linux x64 binding bundles `cpu` and `webgpu` (Dawn over Vulkan). `cuda` and
 * `tensorrt` need ONNX Runtime's provider libraries, which npm does not ship (the package's install
 * script fetches them from NuGet), and NVIDIA's libraries under them. The checks are static (files
 * found where the dynamic loader looks); what only a live session shows (no GPU adapter, a driver
 * error) is reported by the load, wrapped by `describeProviderFailure`.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import * as ort from 'onnxruntime-node';

/** What `probeProvider` found out about one execution provider on this machine. */
export interface ProviderProbe {
  /** The name as asked: `cpu`, `cuda`, `tensorrt`, `webgpu`, or another. */
  provider: string;
  /** The static check passed (the libraries were found); a failure only a live session shows is reported by the load. */
  available: boolean;
  /** Shared libraries not found where the dynamic loader looks, by file name (e.g. `libnvinfer.so.10`). */
  missing: string[];
  /** Each a sentence: what is missing and what to do. */
  problems: string[];
  /** One message for an error or a warning: `<provider> is not available: …` (`''` when available). */
  message: string;
  /** Where each required library was found, by file name. */
  found: Record<string, string>;
  /** Whether onnxruntime-node's binding contains the provider itself (`listSupportedBackends`' `bundled`); false for unknown names. */
  bundled: boolean;
}

const requireHere = createRequire(import.meta.url);
const ORT_PACKAGE_JSON = requireHere.resolve('onnxruntime-node/package.json');
/** The installed onnxruntime-node's version: the NuGet package of the provider libraries must match it. */
const ORT_VERSION = (requireHere(ORT_PACKAGE_JSON) as { version: string }).version;

/** Folder of `onnxruntime_binding.node` (and `libonnxruntime.so.1`) for this platform: ONNX Runtime loads its provider libraries from there. */
export function ortBindingFolder(): string {
  return path.join(path.dirname(ORT_PACKAGE_JSON), 'bin', 'napi-v6', process.platform, process.arch);
}

/** ONNX Runtime's own provider libraries, which must sit next to `libonnxruntime.so.1` (it loads them from its folder). */
const ORT_CUDA_LIBS = ['libonnxruntime_providers_shared.so', 'libonnxruntime_providers_cuda.so'] as const;
const ORT_TENSORRT_LIB = 'libonnxruntime_providers_tensorrt.so';
/** CUDA 12 libraries that ONNX Runtime's CUDA provider links (the build onnxruntime-node 1.30 installs is for CUDA 12). */
const CUDA_RUNTIME_LIBS = ['libcudart.so.12', 'libcublas.so.12', 'libcublasLt.so.12', 'libcufft.so.11', 'libcurand.so.10'] as const;
const CUDNN_LIBS = ['libcudnn.so.9'] as const;
const TENSORRT_LIBS = ['libnvinfer.so.10', 'libnvinfer_plugin.so.10', 'libnvonnxparser.so.10'] as const;
const VULKAN_LIBS = ['libvulkan.so.1'] as const;

/** Every shared library each GPU provider needs, in the order they are checked. */
export const PROVIDER_LIBRARIES: Readonly<Record<'cuda' | 'tensorrt' | 'webgpu', readonly string[]>> = {
  cuda: [...ORT_CUDA_LIBS, ...CUDA_RUNTIME_LIBS, ...CUDNN_LIBS],
  tensorrt: [...ORT_CUDA_LIBS, ORT_TENSORRT_LIB, ...CUDA_RUNTIME_LIBS, ...CUDNN_LIBS, ...TENSORRT_LIBS],
  webgpu: [...VULKAN_LIBS],
};

const ORT_LIBS_HINT =
  `run \`npm rebuild onnxruntime-node --onnxruntime-node-install=cuda12\` with the package's install script allowed (it downloads Microsoft.ML.OnnxRuntime.Gpu.Linux ${ORT_VERSION} from NuGet), ` +
  `or copy libonnxruntime_providers_shared.so, libonnxruntime_providers_cuda.so and libonnxruntime_providers_tensorrt.so from runtimes/linux-x64/native/ of that package into ${ortBindingFolder()}`;
const CUDA_HINT = 'CUDA 12 (cudart, cuBLAS, cuFFT, cuRAND: the cuda-libraries-12-x packages or the nvidia-*-cu12 pip wheels) with an NVIDIA driver for CUDA 12';
const CUDNN_HINT = 'cuDNN 9 for CUDA 12 (the libcudnn9-cuda-12 package, or the nvidia-cudnn-cu12 pip wheel)';
const TENSORRT_HINT = "TensorRT 10 for CUDA 12 (NVIDIA's TensorRT 10 tar with its lib/ folder on LD_LIBRARY_PATH, or the libnvinfer10, libnvinfer-plugin10 and libnvonnxparsers10 packages)";
const LOADER_HINT = "on the dynamic loader's path (LD_LIBRARY_PATH, or /etc/ld.so.conf.d and `ldconfig`)";

/** How to install what each GPU provider needs, in a few sentences. */
export const GPU_INSTALL_HINT: Readonly<Record<'cuda' | 'tensorrt' | 'webgpu', string>> = {
  cuda: `Install ONNX Runtime's CUDA provider for onnxruntime-node ${ORT_VERSION}: ${ORT_LIBS_HINT}. Then ${CUDA_HINT} and ${CUDNN_HINT}, ${LOADER_HINT}.`,
  tensorrt: `Install everything the cuda provider needs (${ORT_LIBS_HINT}; ${CUDA_HINT}; ${CUDNN_HINT}), and ${TENSORRT_HINT}, ${LOADER_HINT}.`,
  webgpu:
    "Install the Vulkan loader (libvulkan.so.1; Debian/Ubuntu: libvulkan1) and the GPU's Vulkan driver: for NVIDIA, the driver's ICD file nvidia_icd.json " +
    '(in a container, NVIDIA_DRIVER_CAPABILITIES must include graphics), in /usr/share/vulkan/icd.d or named by VK_DRIVER_FILES.',
};

/** The provider names this binding knows (`cpu`, `webgpu`, `cuda`, `tensorrt` on Linux x64), with whether each is bundled. */
function knownProviders(): ReadonlyMap<string, boolean> {
  return new Map(ort.listSupportedBackends().map((b) => [b.name, b.bundled]));
}

// ---- finding shared libraries ----

/** Where a library was found; `cuda-toolkit`: a CUDA install folder the dynamic loader does not search by itself. */
type Place = 'LD_LIBRARY_PATH' | 'ldconfig' | 'system' | 'cuda-toolkit' | 'binding';

let ldconfigCache: Map<string, string> | undefined;

/** `ldconfig -p`: the loader's cache, file name → path (this architecture's entry first). Empty when ldconfig cannot run. */
function ldconfigEntries(refresh = false): Map<string, string> {
  if (ldconfigCache && !refresh) return ldconfigCache;
  const entries = new Map<string, string>();
  const archTag = process.arch === 'x64' ? 'x86-64' : process.arch === 'arm64' ? 'AArch64' : undefined;
  // PATH often lacks /sbin for non-root users
  for (const bin of ['ldconfig', '/sbin/ldconfig', '/usr/sbin/ldconfig']) {
    let out: string;
    try {
      out = execFileSync(bin, ['-p'], { encoding: 'utf8', timeout: 5000, stdio: ['ignore', 'pipe', 'ignore'] });
    } catch {
      continue;
    }
    for (const line of out.split('\n')) {
      const m = /^\s+(\S+)\s+\(([^)]*)\)\s+=>\s+(\S.*)$/.exec(line);
      if (!m) continue;
      const [, name, tags, file] = m as unknown as [string, string, string, string];
      const ours = archTag === undefined || tags.includes(archTag);
      // another architecture's copy only when there is no entry of ours
      if (ours || !entries.has(name)) entries.set(name, file.trim());
    }
    break;
  }
  ldconfigCache = entries;
  return entries;
}

function ldLibraryPathDirs(env: NodeJS.ProcessEnv): string[] {
  return (env['LD_LIBRARY_PATH'] ?? '').split(':').filter((d) => d !== '');
}

/** `/usr/local/cuda*` library folders. */
function cudaToolkitDirs(): string[] {
  let names: string[];
  try {
    names = readdirSync('/usr/local').filter((n) => n.startsWith('cuda'));
  } catch {
    return [];
  }
  return names.sort().flatMap((n) => [path.join('/usr/local', n, 'lib64'), path.join('/usr/local', n, 'lib')]);
}

const MULTIARCH = process.arch === 'arm64' ? 'aarch64-linux-gnu' : 'x86_64-linux-gnu';

function locate(fileName: string, env: NodeJS.ProcessEnv, refresh = false): { file: string; place: Place } | undefined {
  for (const dir of ldLibraryPathDirs(env)) {
    const file = path.join(dir, fileName);
    if (existsSync(file)) return { file, place: 'LD_LIBRARY_PATH' };
  }
  const cached = ldconfigEntries(refresh).get(fileName);
  if (cached !== undefined && existsSync(cached)) return { file: cached, place: 'ldconfig' };
  for (const dir of [`/usr/lib/${MULTIARCH}`, `/lib/${MULTIARCH}`, '/usr/lib64', '/lib64', '/usr/lib', '/lib']) {
    const file = path.join(dir, fileName);
    if (existsSync(file)) return { file, place: 'system' };
  }
  for (const dir of cudaToolkitDirs()) {
    const file = path.join(dir, fileName);
    if (existsSync(file)) return { file, place: 'cuda-toolkit' };
  }
  const file = path.join(ortBindingFolder(), fileName);
  if (existsSync(file)) return { file, place: 'binding' };
  return undefined;
}

/**
 * Where `fileName` (e.g. `libcudnn.so.9`) is: the folders of LD_LIBRARY_PATH, the loader's cache
 * (`ldconfig -p`), /usr/lib/x86_64-linux-gnu, /usr/lib64, /lib, /usr/local/cuda*\/lib64 and
 * onnxruntime-node's binding folder, first found; `undefined` when in none. Only that a file of
 * that name exists is checked, not that it loads.
 */
export function findSharedLibrary(fileName: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  return locate(fileName, env)?.file;
}

/** Other versions of a missing library the loader knows (`libcudart.so.13` for `libcudart.so.12`). */
function otherVersions(fileName: string, env: NodeJS.ProcessEnv): string[] {
  const stem = fileName.replace(/\.so(\.\d+)*$/, '.so.');
  const names = new Set<string>();
  for (const name of ldconfigEntries().keys()) if (name.startsWith(stem) && name !== fileName) names.add(name);
  for (const dir of ldLibraryPathDirs(env)) {
    try {
      for (const name of readdirSync(dir)) if (name.startsWith(stem) && name !== fileName && /^\S+\.so\.\d+$/.test(name)) names.add(name);
    } catch {
      // a folder that does not exist finds nothing
    }
  }
  return [...names].sort();
}

// ---- the probe ----

const probes = new Map<string, ProviderProbe>();

function freeze(probe: ProviderProbe): ProviderProbe {
  Object.freeze(probe.missing);
  Object.freeze(probe.problems);
  Object.freeze(probe.found);
  return Object.freeze(probe);
}

function listed(names: readonly string[]): string {
  if (names.length <= 1) return names.join('');
  return `${names.slice(0, -1).join(', ')} and ${names.at(-1)!}`;
}

/**
 * Whether `name` can run here, from files alone: `cpu` always can; `cuda` needs ONNX Runtime's
 * provider libraries in the binding folder and CUDA 12 with cuDNN 9 where the loader finds them;
 * `tensorrt` that and TensorRT 10; `webgpu` the Vulkan loader (whether a GPU adapter answers, only
 * a live session shows). Names the binding does not know are never available. Cached per
 * (name, LD_LIBRARY_PATH); `refresh` looks again (e.g. before failing a load, in case the libraries
 * were installed since).
 */
export function probeProvider(name: string, options: { env?: NodeJS.ProcessEnv; refresh?: boolean } = {}): ProviderProbe {
  const env = options.env ?? process.env;
  const key = `${name}\0${env['LD_LIBRARY_PATH'] ?? ''}`;
  const cached = probes.get(key);
  if (cached && !options.refresh) return cached;
  const probe = freeze(runProbe(name, env, options.refresh === true));
  probes.set(key, probe);
  return probe;
}

function runProbe(name: string, env: NodeJS.ProcessEnv, refresh: boolean): ProviderProbe {
  const known = knownProviders();
  const probe: ProviderProbe = { provider: name, available: true, missing: [], problems: [], message: '', found: {}, bundled: known.get(name) ?? false };
  if (!known.has(name)) {
    const lower = name.toLowerCase();
    const guess = known.has(lower) ? ` (did you mean '${lower}'? the names are lower case)` : '';
    probe.available = false;
    probe.problems.push(`onnxruntime-node ${ORT_VERSION} on ${process.platform}/${process.arch} has no execution provider '${name}'${guess}; it knows ${listed([...known.keys()])}.`);
    probe.message = `${name} is not available: ${probe.problems.join(' ')}`;
    return probe;
  }
  // the library names and folders below are Linux's; elsewhere only the name is checked, and the
  // load reports what ONNX Runtime says
  if (name === 'cpu' || process.platform !== 'linux' || !(name in PROVIDER_LIBRARIES)) return probe;
  const provider = name as keyof typeof PROVIDER_LIBRARIES;
  const folder = ortBindingFolder();
  const notOnPath: string[] = [];
  const absent = new Set<string>();
  /** Found in a CUDA folder the loader does not search: missing to ONNX Runtime, but what to do differs. */
  const offPath = new Set<string>();
  for (const lib of PROVIDER_LIBRARIES[provider]) {
    if (lib.startsWith('libonnxruntime_providers_')) {
      // ONNX Runtime opens these by path, from its own folder: anywhere else they are not used
      const file = path.join(folder, lib);
      if (existsSync(file)) probe.found[lib] = file;
      else absent.add(lib);
      continue;
    }
    const where = locate(lib, env, refresh);
    if (!where) absent.add(lib);
    else if (where.place === 'cuda-toolkit') {
      absent.add(lib);
      offPath.add(lib);
      notOnPath.push(`${lib} is in ${path.dirname(where.file)}, which the dynamic loader does not search: add that folder to LD_LIBRARY_PATH (or to /etc/ld.so.conf.d and run \`ldconfig\`).`);
    } else probe.found[lib] = where.file;
  }
  probe.missing.push(...absent);
  const missingOf = (group: readonly string[]): string[] => group.filter((l) => absent.has(l) && !offPath.has(l));
  const ortLibs = missingOf(provider === 'tensorrt' ? [...ORT_CUDA_LIBS, ORT_TENSORRT_LIB] : provider === 'cuda' ? ORT_CUDA_LIBS : []);
  if (ortLibs.length > 0) {
    probe.problems.push(`ONNX Runtime's provider ${ortLibs.length > 1 ? 'libraries' : 'library'} ${listed(ortLibs)} ${ortLibs.length > 1 ? 'are' : 'is'} not in onnxruntime-node's binding folder ${folder} (npm does not ship them): ${ORT_LIBS_HINT}.`);
  }
  const versions = (libs: string[]): string => {
    const others = libs.flatMap((l) => otherVersions(l, env));
    return others.length > 0 ? ` (found ${listed(others)}: other major versions, which this build of ONNX Runtime cannot use)` : '';
  };
  const cudaLibs = missingOf(CUDA_RUNTIME_LIBS);
  if (cudaLibs.length > 0) probe.problems.push(`CUDA 12 ${cudaLibs.length > 1 ? 'libraries' : 'library'} not found: ${listed(cudaLibs)}${versions(cudaLibs)}. Install ${CUDA_HINT}, ${LOADER_HINT}.`);
  const cudnnLibs = missingOf(CUDNN_LIBS);
  if (cudnnLibs.length > 0) probe.problems.push(`cuDNN 9 not found (${listed(cudnnLibs)})${versions(cudnnLibs)}. Install ${CUDNN_HINT}, ${LOADER_HINT}.`);
  const trtLibs = missingOf(TENSORRT_LIBS);
  if (trtLibs.length > 0) probe.problems.push(`TensorRT 10 ${trtLibs.length > 1 ? 'libraries' : 'library'} not found: ${listed(trtLibs)}${versions(trtLibs)}. Install ${TENSORRT_HINT}, ${LOADER_HINT}.`);
  const vulkanLibs = missingOf(VULKAN_LIBS);
  if (vulkanLibs.length > 0) probe.problems.push(`The Vulkan loader (${listed(vulkanLibs)}) was not found; ONNX Runtime's WebGPU provider runs on Vulkan. ${GPU_INSTALL_HINT.webgpu}`);
  probe.problems.push(...notOnPath);
  if (probe.missing.length > 0) {
    probe.available = false;
    probe.message = `${name} is not available: ${probe.problems.join(' ')}`;
  }
  return probe;
}

// ---- provider options the binding passes ----

/** Options of ONNX Runtime's CUDA provider (ORT's names and the binding's camel case), looked for in the binding. */
const CUDA_OPTION_CANDIDATES = [
  'gpu_mem_limit', 'arena_extend_strategy', 'cudnn_conv_algo_search', 'do_copy_in_default_stream', 'cudnn_conv_use_max_workspace',
  'cudnn_conv1d_pad_to_nc1d', 'enable_cuda_graph', 'enable_skip_layer_norm_strict_mode', 'prefer_nhwc', 'use_tf32',
  'gpuMemLimit', 'arenaExtendStrategy', 'cudnnConvAlgoSearch', 'doCopyInDefaultStream', 'cudnnConvUseMaxWorkspace', 'enableCudaGraph', 'preferNhwc', 'useTf32',
];
/** Options of ONNX Runtime's TensorRT provider, looked for in the binding. */
const TENSORRT_OPTION_CANDIDATES = [
  'trt_max_workspace_size', 'trt_fp16_enable', 'trt_int8_enable', 'trt_int8_calibration_table_name', 'trt_engine_cache_enable', 'trt_engine_cache_path',
  'trt_timing_cache_enable', 'trt_timing_cache_path', 'trt_builder_optimization_level', 'trt_profile_min_shapes', 'trt_profile_opt_shapes',
  'trt_profile_max_shapes', 'trt_max_partition_iterations', 'trt_min_subgraph_size', 'trt_dla_enable', 'trt_dla_core', 'trt_dump_subgraphs',
  'trt_force_sequential_engine_build', 'trt_context_memory_sharing_enable', 'trt_layer_norm_fp32_fallback', 'trt_cuda_graph_enable',
  'trt_detailed_build_log', 'trt_sparsity_enable', 'trt_auxiliary_streams', 'trt_tactic_sources', 'trt_extra_plugin_lib_paths',
  'trt_ep_context_file_path', 'trt_dump_ep_context_model', 'trt_ep_context_embed_mode', 'trt_engine_decryption_enable',
];
/** The WebGPU options onnxruntime-node's binding has read in one release or another (1.30's are `WEBGPU_OPTIONS_1_30`). */
const WEBGPU_OPTION_CANDIDATES = [
  'preferredLayout', 'validationMode', 'weightLoadAcceleration', 'storageBufferCacheMode', 'uniformBufferCacheMode', 'queryResolveBufferCacheMode',
  'defaultBufferCacheMode', 'enableRobustness', 'enableMatmulFp32Accumulation', 'forceCpuNodeNames', 'enableGraphCapture',
];
/** What onnxruntime-node 1.30's binding reads for `webgpu`, when the binding file cannot be read. */
const WEBGPU_OPTIONS_1_30 = ['preferredLayout', 'validationMode', 'storageBufferCacheMode', 'uniformBufferCacheMode', 'queryResolveBufferCacheMode', 'defaultBufferCacheMode', 'enableRobustness', 'forceCpuNodeNames'];

let bindingText: string | null | undefined;

/** The binding's bytes as latin1 text, read once (`null` when unreadable). */
function bindingStrings(): string | null {
  if (bindingText === undefined) {
    try {
      bindingText = readFileSync(path.join(ortBindingFolder(), 'onnxruntime_binding.node')).toString('latin1');
    } catch {
      bindingText = null;
    }
  }
  return bindingText;
}

const optionKeys = new Map<string, ReadonlySet<string>>();

/**
 * The option keys (besides `name`) that the installed binding hands to `provider`: anything else in
 * an `executionProviders` entry is dropped without a word (or, for `webgpu`, rejected). The 1.30
 * binding creates the CUDA and TensorRT providers with `deviceId` alone (js/node/src/
 * session_options_helper.cc), so the binding is scanned once for their other option names in case
 * a later one passes them; `webgpu` gets the keys the binding reads (not `deviceId`, which it
 * rejects); `cpu` none. Empty for names it does not know.
 */
export function bindingProviderOptionKeys(provider: string): ReadonlySet<string> {
  let keys = optionKeys.get(provider);
  if (keys) return keys;
  const text = bindingStrings();
  const present = (candidates: readonly string[]): string[] => (text === null ? [] : candidates.filter((k) => text.includes(k)));
  switch (provider) {
    case 'cuda':
      keys = new Set(['deviceId', ...present(CUDA_OPTION_CANDIDATES)]);
      break;
    case 'tensorrt':
      keys = new Set(['deviceId', ...present(TENSORRT_OPTION_CANDIDATES)]);
      break;
    case 'webgpu':
      keys = new Set(text === null ? WEBGPU_OPTIONS_1_30 : present(WEBGPU_OPTION_CANDIDATES));
      break;
    case 'dml':
      keys = new Set(['deviceId']);
      break;
    case 'coreml':
      keys = new Set(['coreMlFlags']);
      break;
    case 'qnn':
      keys = new Set(['backendType', 'backendPath', 'enableFp16Precision']);
      break;
    default:
      keys = new Set();
  }
  optionKeys.set(provider, keys);
  return keys;
}

/** One `executionProviders` entry as the config gives it. */
export type ExecutionProviderEntry = string | { name: string; [option: string]: unknown };

/** The name of an `executionProviders` entry. */
export function providerName(entry: ExecutionProviderEntry): string {
  return typeof entry === 'string' ? entry : entry.name;
}

/**
 * Why each option of `executionProviders` would not reach its provider through this binding (one
 * sentence each, naming the keys it does pass); empty when all do.
 */
export function unsupportedProviderOptions(executionProviders: readonly ExecutionProviderEntry[]): string[] {
  const problems: string[] = [];
  executionProviders.forEach((entry, i) => {
    if (typeof entry === 'string') return;
    const carried = bindingProviderOptionKeys(entry.name);
    const dropped = Object.keys(entry).filter((k) => k !== 'name' && !carried.has(k));
    if (dropped.length === 0) return;
    const passes = carried.size > 0 ? `passes only ${listed([...carried])} to ${entry.name}` : `passes no options to ${entry.name}`;
    const arena = entry.name === 'cpu' && dropped.includes('useArena') ? ' (for the CPU arena, set sessionOptions.enableCpuMemArena)' : '';
    problems.push(
      `sessionOptions.executionProviders[${i}] (${entry.name}): onnxruntime-node ${ORT_VERSION} ${passes}, so ${listed(dropped.map((k) => `'${k}'`))} would not take effect; remove ${dropped.length > 1 ? 'them' : 'it'}${arena}.`,
    );
  });
  return problems;
}

// ---- failures only a live session shows ----

/** How each GPU provider's failures read in ONNX Runtime's messages (TensorRT's first: they may mention CUDA too). */
const FAILURE_PATTERNS: readonly [provider: 'tensorrt' | 'cuda' | 'webgpu', pattern: RegExp][] = [
  ['tensorrt', /AppendExecutionProvider_TensorRT|TensorRT|Tensorrt|nvinfer|nvonnxparser/],
  ['cuda', /AppendExecutionProvider_Cuda|CUDA|cuda|cuDNN|CUDNN|cudnn|cuBLAS|CUBLAS|cublas/],
  ['webgpu', /WebGPU|webgpu|Dawn|wgpu::|Vulkan/],
];

/** ONNX Runtime's message without the source location and the failed check in front (kept in the error's cause). */
function cleanOrtMessage(message: string): string {
  let text = message.trim();
  const check = /^\/\S+:\d+ [\s\S]*? was false\.\s*([\s\S]+)$/.exec(text);
  if (check) text = check[1]!.trim();
  text = text.replace(/^\[ONNXRuntimeError\] : \d+ : [A-Z_]+ : /, '');
  return text.replace(/[.\s]+$/, '');
}

/** The Vulkan drivers (ICD files) the Vulkan loader would see, by file name. */
export function vulkanDriverFiles(env: NodeJS.ProcessEnv = process.env): string[] {
  const named = [env['VK_DRIVER_FILES'], env['VK_ICD_FILENAMES']].find((v) => v !== undefined && v !== '');
  const files: string[] = [];
  if (named) files.push(...named.split(':').filter((f) => f !== '' && existsSync(f)));
  else {
    const home = env['HOME'];
    const dataHome = env['XDG_DATA_HOME'] ?? (home ? path.join(home, '.local/share') : undefined);
    const dirs = [
      ...(env['XDG_CONFIG_DIRS'] ?? '/etc/xdg').split(':'),
      '/etc',
      '/usr/local/etc',
      ...(dataHome ? [dataHome] : []),
      ...(env['XDG_DATA_DIRS'] ?? '/usr/local/share:/usr/share').split(':'),
    ].filter((d) => d !== '');
    for (const dir of dirs) {
      try {
        for (const f of readdirSync(path.join(dir, 'vulkan', 'icd.d'))) if (f.endsWith('.json')) files.push(path.join(dir, 'vulkan', 'icd.d', f));
      } catch {
        // no such folder
      }
    }
  }
  for (const f of (env['VK_ADD_DRIVER_FILES'] ?? '').split(':')) if (f !== '' && existsSync(f)) files.push(f);
  return [...new Set(files.map((f) => path.basename(f)))];
}

/**
 * When ONNX Runtime failed to create a session for a reason of one of the GPU providers listed
 * (no WebGPU adapter, a CUDA driver error, a library the probe does not check), the reason with
 * the provider named and how to install what it needs; `undefined` when the message is not a
 * provider's.
 */
export function describeProviderFailure(message: string, providers: readonly string[], env: NodeJS.ProcessEnv = process.env): { provider: string; message: string } | undefined {
  for (const [provider, pattern] of FAILURE_PATTERNS) {
    if (!providers.includes(provider) || !pattern.test(message)) continue;
    const reason = cleanOrtMessage(message);
    if (provider === 'webgpu' && /adapter/i.test(reason)) {
      const drivers = vulkanDriverFiles(env);
      const seen = drivers.length > 0 ? `the Vulkan drivers the loader sees are ${listed(drivers)}${drivers.some((d) => /nvidia/i.test(d)) ? '' : ', none of them NVIDIA\'s'}` : 'the Vulkan loader sees no driver (ICD file)';
      return { provider, message: `webgpu found no GPU to run on (ONNX Runtime: "${reason}"): WebGPU runs on Vulkan here, and ${seen}. ${GPU_INSTALL_HINT.webgpu}` };
    }
    const libs = /Failed to load shared library/i.test(reason) ? ' The libraries Tessera checks for were found; ONNX Runtime\'s log on stderr (provider_bridge_ort.cc) names the one that did not load.' : '';
    return { provider, message: `${provider} failed to start in ONNX Runtime: ${reason}.${libs} ${GPU_INSTALL_HINT[provider]}` };
  }
  return undefined;
}
