import { json } from '../../src/core/http/respond.js';
import type { Route } from '../../src/core/http/server.js';
import { storeValue } from './fields.js';
import { adminRoute, mustExist, pathId, readBody } from '../http/handlers.js';
import type { AdminContext } from './crud.js';
import { issueNodeSecret } from '../store/node-credentials.js';
import { OPENSIPS_NODES } from './resources.js';

/**
 * `POST /api/opensips-nodes/{id}/rotate-secret` (added, contract note 39): a new secret for the node,
 * answered once. Body (optional): `{"keep_previous": false}` to refuse the old secret at once; by default
 * the old one keeps working until the node's first round with the new one.
 */
export function nodeSecretRoutes(context: AdminContext): Route[] {
  const { store } = context;
  return [
    adminRoute('POST', `${OPENSIPS_NODES.path}/{id}/rotate-secret`, context.maxBodyBytes, async (request) => {
      const id = pathId(request, 'id');
      const node = await mustExist(store, OPENSIPS_NODES.table, id, OPENSIPS_NODES.noun);
      const body = request.body.byteLength === 0 ? {} : readBody(request);
      const keepPrevious =
        body.keep_previous === undefined ? true : (storeValue('keep_previous', { kind: 'boolean' }, body.keep_previous) as number) === 1;
      const issued = await issueNodeSecret(store, id, keepPrevious);
      return json(200, { id, hostname: node.hostname, node_secret: issued.secret, previous_secret_accepted: issued.previousAccepted });
    }),
  ];
}
