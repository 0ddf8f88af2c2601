/**
 * The kubernetes example, as its README runs it: `kubectl kustomize examples/kubernetes`, every
 * object validated against the Kubernetes 1.27.1 schemas of kubernetes-models, and the example's
 * own settings checked in the output. kubectl missing fails the test (it names the package), unless
 * TESSERA_SKIP_KUBECTL=1, as for test/deploy/kubernetes.int.spec.ts.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { ConfigMap, PersistentVolumeClaim, Secret, Service } from 'kubernetes-models/v1';
import { Deployment } from 'kubernetes-models/apps/v1';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';

const ROOT = path.resolve(import.meta.dirname, '../..');
const KUBECTL = process.env.KUBECTL ?? 'kubectl';
const BUILT_IN: Record<string, new (o: never) => { validate(): void }> = {
  ConfigMap,
  Secret,
  Service,
  PersistentVolumeClaim,
  Deployment,
  HorizontalPodAutoscaler,
  NetworkPolicy,
  PodDisruptionBudget,
};

type Obj = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string }; spec?: any };

function render(): Promise<Obj[] | 'missing'> {
  return new Promise((resolve, reject) => {
    execFile(KUBECTL, ['kustomize', 'examples/kubernetes'], { cwd: ROOT, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      if ((err as NodeJS.ErrnoException | null)?.code === 'ENOENT') return resolve('missing');
      if (err) return reject(new Error(`kubectl kustomize examples/kubernetes failed: ${stderr}`));
      resolve(parseAllDocuments(stdout).map((d) => d.toJS() as Obj));
    });
  });
}

describe('examples/kubernetes', () => {
  it('should render with kubectl kustomize into valid objects with the namespace, image, replicas and the models claim', async (ctx) => {
    const objects = await render();
    if (objects === 'missing') {
      if (process.env.TESSERA_SKIP_KUBECTL === '1') ctx.skip('kubectl is not installed and TESSERA_SKIP_KUBECTL=1');
      throw new Error('kubectl is not installed: apt-get install kubernetes-client (or scripts/ensure-tool.sh kubectl kubernetes-client)');
    }
    for (const o of objects) {
      // kustomize folds a Secret's base64 over lines; the API server's decoder skips line breaks, the schema's "byte" format does not
      if (o.kind === 'Secret') (o as { data?: Record<string, string> }).data = Object.fromEntries(Object.entries((o as { data?: Record<string, string> }).data ?? {}).map(([k, v]) => [k, v.replace(/\s+/g, '')]));
      const Model = BUILT_IN[o.kind];
      if (Model) expect(() => new Model(o as never).validate(), `${o.kind} ${o.metadata.name}`).not.toThrow();
      else expect(o.kind).toBe('ServiceMonitor'); // a CRD: validated against its schema in test/deploy/kubernetes.int.spec.ts
      expect(o.metadata.namespace, `${o.kind} ${o.metadata.name}`).toBe('ocr');
    }
    const deployment = objects.find((o) => o.kind === 'Deployment')!;
    expect(deployment.spec.replicas).toBe(2);
    expect(deployment.spec.template.spec.containers[0].image).toBe('registry.example.com/tessera:0.1.0');
    const models = deployment.spec.template.spec.volumes.find((v: { name: string }) => v.name === 'models');
    expect(models).toEqual({ name: 'models', persistentVolumeClaim: { claimName: 'tessera-models', readOnly: true } });
    const claim = objects.find((o) => o.kind === 'PersistentVolumeClaim');
    expect(claim?.metadata.name).toBe('tessera-models');
    expect(claim?.spec.accessModes).toEqual(['ReadOnlyMany']);
  });
});
