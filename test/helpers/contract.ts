import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { REPO } from '../../src/devkit/paths.js';

/**
 * The switch API's contract as a validator: every operation's declared statuses and, per status, a JSON
 * Schema validator of its body, compiled from the pinned copy in docs/contract/ (the one the contract notes
 * name, so a new contract fails the notes' test before it changes what this checks).
 *
 * The document says `openapi: 3.1.0` (JSON Schema 2020-12) but marks optional values with OpenAPI 3.0's
 * `nullable: true`, which 2020-12 does not know: each one is rewritten to the 2020-12 form (null added to
 * `type`, and to `enum` where there is one) before compiling, or every `null` the schema allows would fail.
 */
// ajv-formats is CommonJS with its function as `default`; under NodeNext the import is the module object.
const addFormats = addFormatsModule as unknown as (ajv: Ajv2020) => Ajv2020;

const CONTRACT_FILE = join(REPO, 'docs', 'contract', 'switch-api.openapi.json');
const METHODS = ['get', 'put', 'post', 'delete', 'patch'] as const;
const SCHEMAS_ID = 'switch-api-schemas';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

export interface ContractOperation {
  /** "GET /api/rate-decks/{id}", as the contract's paths spell it. */
  key: string;
  method: string;
  path: string;
  /** Declared statuses other than `default` (which declares no body in this contract). */
  statuses: string[];
}

/** `nullable: true` → 2020-12; `#/components/schemas/X` → the schemas registered once under SCHEMAS_ID. */
function toJsonSchema(node: Json): Json {
  if (Array.isArray(node)) return node.map(toJsonSchema);
  if (node === null || typeof node !== 'object') return node;
  const out: { [key: string]: Json } = {};
  for (const [key, value] of Object.entries(node)) {
    if (key === 'nullable') continue;
    if (key === '$ref' && typeof value === 'string') {
      out.$ref = value.replace('#/components/schemas/', `${SCHEMAS_ID}#/$defs/`);
      continue;
    }
    out[key] = toJsonSchema(value);
  }
  if (node.nullable === true) {
    if (typeof out.type === 'string') out.type = [out.type, 'null'];
    else if (Array.isArray(out.type) && !out.type.includes('null')) out.type = [...out.type, 'null'];
    if (Array.isArray(out.enum) && !out.enum.includes(null)) out.enum = [...out.enum, null];
    if (!('type' in out) && '$ref' in out) return { anyOf: [{ $ref: out.$ref }, { type: 'null' }] };
  }
  return out;
}

export class Contract {
  readonly operations: ContractOperation[] = [];
  private readonly validators = new Map<string, ValidateFunction>();
  private readonly schemas: Record<string, Json>;

  constructor(file = CONTRACT_FILE) {
    const document = JSON.parse(readFileSync(file, 'utf8')) as {
      paths: Record<string, Partial<Record<string, { responses?: Record<string, { content?: Record<string, { schema?: Json }> }> }>>>;
      components: { schemas: Record<string, Json> };
    };
    this.schemas = document.components.schemas;
    // Not strict: the schemas carry OpenAPI's `example` and `format: int64` beside JSON Schema keywords.
    const ajv = new Ajv2020({ strict: false, allErrors: true, logger: false });
    addFormats(ajv);
    ajv.addFormat('int32', true).addFormat('int64', true).addFormat('float', true).addFormat('double', true);
    ajv.addSchema({ $id: SCHEMAS_ID, $defs: toJsonSchema(document.components.schemas) });
    for (const [path, item] of Object.entries(document.paths)) {
      for (const method of METHODS) {
        const operation = item[method];
        if (operation === undefined) continue;
        const key = `${method.toUpperCase()} ${path}`;
        const statuses = Object.keys(operation.responses ?? {}).filter((status) => status !== 'default');
        this.operations.push({ key, method: method.toUpperCase(), path, statuses });
        for (const status of statuses) {
          const schema = operation.responses?.[status]?.content?.['application/json']?.schema;
          if (schema !== undefined) this.validators.set(`${key} ${status}`, ajv.compile(toJsonSchema(schema) as object));
        }
      }
    }
  }

  /** A request body made of the examples the contract gives for each property of `schema`, then `overrides`. */
  example(schema: string, overrides: Record<string, unknown> = {}): Record<string, unknown> {
    const properties = (this.schemas[schema] as { properties?: Record<string, { example?: unknown }> } | undefined)?.properties;
    if (properties === undefined) throw new Error(`no schema ${schema} with properties in the contract`);
    const body: Record<string, unknown> = {};
    for (const [name, property] of Object.entries(properties)) if (property.example !== undefined) body[name] = property.example;
    return { ...body, ...overrides };
  }

  /** What is wrong with this answer to `key` (empty when it is what the contract declares). */
  problems(key: string, status: number, body: unknown): string[] {
    const operation = this.operations.find((candidate) => candidate.key === key);
    if (operation === undefined) return [`${key} is not in the contract`];
    if (!operation.statuses.includes(String(status))) return [`${key} answered ${status}; declared: ${operation.statuses.join(', ')}`];
    const validate = this.validators.get(`${key} ${status}`);
    if (validate === undefined) return body === null ? [] : [`${key} ${status} declares no body, got ${JSON.stringify(body)}`];
    if (validate(body)) return [];
    return (validate.errors ?? []).map(
      (error) => `${key} ${status}: body${error.instancePath} ${error.message ?? ''} ${JSON.stringify(error.params)}`,
    );
  }
}
