import type { ExecutionProviderEntry, ProviderProbe } from '@tessera/backend-onnxruntime';
import { bindingProviderOptionKeys, probeProvider } from '@tessera/backend-onnxruntime';
import type { TensorRtFallback } from './config.js';
import type { TensorRtProviderOptions } from './provider-options.js';
import { uncarriedSettings } from './provider-options.js';

/** A provider a TensorRT model may end up on. */
export type ServingProvider = 'tensorrt' | 'cuda' | 'cpu';

/** What decides whether a provider can run here: the static library probe and what the binding carries. */
export interface ProviderEnvironment {
  probe(name: 'tensorrt' | 'cuda'): ProviderProbe;
  bindingKeys(name: 'tensorrt'): ReadonlySet<string>;
}

/** This machine and this onnxruntime-node binding (`probeProvider`, `bindingProviderOptionKeys`). */
export const LOCAL_PROVIDERS: ProviderEnvironment = {
  probe: (name) => probeProvider(name),
  bindingKeys: (name) => bindingProviderOptionKeys(name),
};

/** The providers tried, in order, as far as `fallback` allows: TensorRT, then CUDA, then the CPU. */
export function providerChain(fallback: TensorRtFallback): ServingProvider[] {
  if (fallback === 'error') return ['tensorrt'];
  if (fallback === 'cuda') return ['tensorrt', 'cuda'];
  return ['tensorrt', 'cuda', 'cpu'];
}

/** `text` ending in a full stop. */
function sentence(text: string): string {
  const t = text.trim();
  return /[.!?]$/.test(t) ? t : `${t}.`;
}

/**
 * Why a provider cannot serve the model here, in sentences (the probe's say what to install);
 * empty: it can.
 */
export function providerProblems(provider: ServingProvider, options: Readonly<TensorRtProviderOptions>, env: ProviderEnvironment): string[] {
  if (provider === 'cpu') return [];
  const probe = env.probe(provider);
  const problems = probe.available ? [] : (probe.problems.length > 0 ? probe.problems : [probe.message]).map(sentence);
  if (provider === 'tensorrt') {
    const carried = env.bindingKeys('tensorrt');
    const lost = uncarriedSettings(options, carried);
    if (lost.length > 0) {
      const passes = carried.size > 0 ? [...carried].join(', ') : 'no options';
      problems.push(
        `This onnxruntime-node binding passes only ${passes} to TensorRT, so ${lost.join(' / ')} cannot be applied ` +
          "(onnxruntime-node's js/node/src/session_options_helper.cc creates the TensorRT provider with device_id alone, and ORT then ignores the ORT_TENSORRT_* variables).",
      );
    }
  }
  return problems;
}

/** The provider a model serves on, and why each one before it was passed over. */
export interface ProviderChoice {
  /** Undefined: none of the chain can run here. */
  provider: ServingProvider | undefined;
  /** `sessionOptions.executionProviders` for it: the provider with those after it that can run too, then the CPU. */
  executionProviders: ExecutionProviderEntry[];
  /** The providers passed over, each with its problems, in chain order. */
  skipped: { provider: ServingProvider; problems: string[] }[];
}

/**
 * Walks the chain of `fallback` and picks the first provider that can run here. Its session gets
 * that provider first, then CUDA when it can run too (ONNX Runtime places each node on the first
 * provider that takes it: TensorRT leaves to CUDA what it cannot build), then the CPU. The
 * TensorRT entry holds `deviceId` and the options the binding carries (those it does not were
 * checked to be ORT's defaults).
 */
export function chooseProvider(fallback: TensorRtFallback, options: Readonly<TensorRtProviderOptions>, env: ProviderEnvironment): ProviderChoice {
  const skipped: ProviderChoice['skipped'] = [];
  const deviceId = Number(options['device_id'] ?? 0);
  for (const provider of providerChain(fallback)) {
    const problems = providerProblems(provider, options, env);
    if (problems.length > 0) {
      skipped.push({ provider, problems });
      continue;
    }
    const executionProviders: ExecutionProviderEntry[] = [];
    if (provider === 'tensorrt') {
      const carried = env.bindingKeys('tensorrt');
      executionProviders.push({ name: 'tensorrt', deviceId, ...Object.fromEntries(Object.entries(options).filter(([k]) => k !== 'device_id' && carried.has(k))) });
    }
    if (provider === 'cuda' || (provider === 'tensorrt' && providerProblems('cuda', options, env).length === 0)) executionProviders.push({ name: 'cuda', deviceId });
    executionProviders.push('cpu');
    return { provider, executionProviders, skipped };
  }
  return { provider: undefined, executionProviders: [], skipped };
}

const PROVIDER_NAMES: Record<ServingProvider, string> = { tensorrt: 'TensorRT', cuda: 'CUDA', cpu: 'CPU' };

/** The providers passed over and why: `TensorRT: … CUDA: …`, a problem said for an earlier provider not repeated. */
export function skippedClause(skipped: ProviderChoice['skipped']): string {
  const said = new Set<string>();
  return skipped
    .map((s) => {
      const fresh = s.problems.filter((p) => !said.has(p));
      for (const p of fresh) said.add(p);
      return `${PROVIDER_NAMES[s.provider]}: ${fresh.length > 0 ? fresh.join(' ') : 'the same libraries are missing.'}`;
    })
    .join(' ');
}

/**
 * The one message (after the model's label) of a model that cannot be served (`serve`) or whose
 * engines cannot be built (`build`): what is missing and how to install it (the probe's sentences),
 * and what serves meanwhile.
 */
export function refusalMessage(doing: 'serve' | 'build', fallback: TensorRtFallback, skipped: ProviderChoice['skipped']): string {
  if (doing === 'build') {
    const meanwhile = fallback === 'error' ? 'set tensorrt.fallback: cuda or cpu to serve without TensorRT' : `tensorrt.fallback: ${fallback} serves the model without TensorRT`;
    return `cannot build TensorRT engines here. ${skippedClause(skipped.filter((s) => s.provider === 'tensorrt'))} Meanwhile, ${meanwhile}.`;
  }
  const what = fallback === 'error' ? 'TensorRT' : `TensorRT or ${providerChain(fallback).slice(1).map((p) => PROVIDER_NAMES[p]).join(' or ')}`;
  const instead = fallback === 'error' ? 'set tensorrt.fallback: cuda or cpu' : 'set tensorrt.fallback: cpu';
  return `cannot run on ${what} here (tensorrt.fallback: ${fallback}). ${skippedClause(skipped)} To serve without TensorRT meanwhile, ${instead}.`;
}

/** The warning of a model served by a fallback: the provider in use and why the ones before it were passed over. */
export function fallbackWarning(fallback: TensorRtFallback, choice: ProviderChoice): string {
  return `serving on ${PROVIDER_NAMES[choice.provider ?? 'cpu']} (${choice.provider}), not TensorRT (tensorrt.fallback: ${fallback}). ${skippedClause(choice.skipped)}`;
}
