// Reference peer for bench/token-load.sh: node-oidc-provider issuing 24 h EdDSA-signed JWT
// access tokens through the client_credentials grant, with its in-memory adapter.
// Usage: node oidc-peer.mjs PORT
import { generateKeyPairSync } from 'node:crypto';
import Provider from 'oidc-provider';

const port = Number(process.argv[2] ?? 8431);
const { privateKey } = generateKeyPairSync('ed25519');
const jwk = { ...privateKey.export({ format: 'jwk' }), kid: 'bench', alg: 'EdDSA', use: 'sig' };
const resource = 'urn:mcpg:gateway';

const provider = new Provider(`http://127.0.0.1:${port}`, {
  clients: [{
    client_id: 'bench-gateway',
    client_secret: 'bench-secret-not-a-real-one',
    grant_types: ['client_credentials'],
    redirect_uris: [],
    response_types: [],
    token_endpoint_auth_method: 'client_secret_basic',
    id_token_signed_response_alg: 'EdDSA',
  }],
  jwks: { keys: [jwk] },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => resource,
      useGrantedResource: () => true,
      getResourceServerInfo: () => ({
        scope: 'entitlements',
        audience: resource,
        accessTokenTTL: 24 * 3600,
        accessTokenFormat: 'jwt',
        jwt: { sign: { alg: 'EdDSA' } },
      }),
    },
  },
});
provider.listen(port, '127.0.0.1', () => {
  console.log(`oidc-provider peer on http://127.0.0.1:${port}/token`);
});
