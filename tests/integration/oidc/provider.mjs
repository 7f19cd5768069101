// A real OpenID provider (oidc-provider) for revokd's integration tests, on loopback only.
//
//   node provider.mjs [CONFIG]
//
// CONFIG is inline JSON (starting with "{") or the path of a JSON file; without it, or for the
// members it leaves out, the environment is read:
//
//   port        OIDC_PORT         TCP port on 127.0.0.1 (0: any free one)           default 0
//   path        OIDC_PATH         the issuer's path, e.g. "/tenant-a": every endpoint is under it
//                                 and the discovery document is at PATH/.well-known/...   default ""
//   issuer      OIDC_ISSUER       issuer identifier              default http://127.0.0.1:PORT + path
//   keys_file   OIDC_KEYS_FILE    JSON file: a list of private JWKs, or {"keys": [...]}; the
//                                 FIRST key signs every access token, all are served at /jwks
//   clients     OIDC_CLIENTS      JSON list of {client_id, client_secret, scope?, claims?};
//                                 "claims" are set in (or, with null, removed from) every access
//                                 token the client gets                 default one client "revokd-test"
//   scopes      OIDC_SCOPES       scopes a resource accepts (space separated)  default "read write"
//   resource    OIDC_RESOURCE     resource (and so aud) when the request names none
//                                                                       default "urn:revokd:test-api"
//   token_ttl   OIDC_TOKEN_TTL    access token lifetime in seconds      default 300
//   jwks_max_age OIDC_JWKS_MAX_AGE  Cache-Control: max-age=N on the JWKS  default none (no header)
//
// Every client may use the client_credentials grant. POST /token with
// grant_type=client_credentials (client_secret_basic or client_secret_post), an optional scope
// and an optional resource (any absolute URI; it becomes "aud") returns a JWT access token
// (typ at+jwt) signed with the first key under that key's "alg".
//
// Ready when it prints {"event":"listening",...} on stdout; logs go to stderr. It stops on
// SIGTERM or SIGINT. A key rotation is a restart with another keys file.

import * as fs from 'node:fs';
import * as http from 'node:http';

import Provider from 'oidc-provider';

const LOOPBACK = '127.0.0.1';

function fail(message) {
  process.stderr.write(`provider.mjs: ${message}\n`);
  process.exit(2);
}

function readConfig() {
  let cfg = {};
  const arg = process.argv[2];
  if (arg !== undefined) {
    try {
      cfg = JSON.parse(arg.trimStart().startsWith('{') ? arg : fs.readFileSync(arg, 'utf8'));
    } catch (err) {
      fail(`cannot read the configuration ${arg.startsWith('{') ? '(inline JSON)' : arg}: ${err.message}`);
    }
  }
  const env = process.env;
  const json = (name) => {
    try {
      return JSON.parse(env[name]);
    } catch (err) {
      return fail(`${name} is not JSON: ${err.message}`);
    }
  };
  cfg.port ??= env.OIDC_PORT !== undefined ? Number(env.OIDC_PORT) : 0;
  cfg.path ??= env.OIDC_PATH ?? '';
  cfg.issuer ??= env.OIDC_ISSUER;
  cfg.keys_file ??= env.OIDC_KEYS_FILE;
  cfg.clients ??= env.OIDC_CLIENTS !== undefined ? json('OIDC_CLIENTS') : undefined;
  cfg.scopes ??= env.OIDC_SCOPES ?? 'read write';
  cfg.resource ??= env.OIDC_RESOURCE ?? 'urn:revokd:test-api';
  cfg.token_ttl ??= env.OIDC_TOKEN_TTL !== undefined ? Number(env.OIDC_TOKEN_TTL) : 300;
  cfg.jwks_max_age ??= env.OIDC_JWKS_MAX_AGE !== undefined ? Number(env.OIDC_JWKS_MAX_AGE) : null;

  if (!Number.isInteger(cfg.port) || cfg.port < 0 || cfg.port > 65535) fail(`bad port ${cfg.port}`);
  if (!Number.isSafeInteger(cfg.token_ttl) || cfg.token_ttl <= 0) fail(`bad token_ttl ${cfg.token_ttl}`);
  cfg.path = cfg.path.replace(/\/+$/, '');
  if (cfg.path && !/^\/[^?#]*$/.test(cfg.path)) fail(`bad path ${cfg.path}`);
  if (cfg.jwks_max_age !== null && !(Number.isSafeInteger(cfg.jwks_max_age) && cfg.jwks_max_age >= 0)) {
    fail(`bad jwks_max_age ${cfg.jwks_max_age}`);
  }
  if (!cfg.keys_file) fail('no keys file (keys_file or OIDC_KEYS_FILE)');
  if (Array.isArray(cfg.scopes)) cfg.scopes = cfg.scopes.join(' ');
  cfg.clients ??= [{ client_id: 'revokd-test', client_secret: 'revokd-test-secret' }];
  if (!Array.isArray(cfg.clients) || cfg.clients.length === 0) fail('clients must be a non-empty list');
  return cfg;
}

// The default "alg" of a key that names none: the one algorithm the key type allows, RS256 for RSA.
function defaultAlg(jwk) {
  if (jwk.kty === 'RSA') return 'RS256';
  if (jwk.kty === 'EC') return { 'P-256': 'ES256', 'P-384': 'ES384', 'P-521': 'ES512' }[jwk.crv];
  if (jwk.kty === 'OKP' && jwk.crv === 'Ed25519') return 'EdDSA';
  return undefined;
}

function readKeys(path) {
  let doc;
  try {
    doc = JSON.parse(fs.readFileSync(path, 'utf8'));
  } catch (err) {
    return fail(`cannot read the keys file ${path}: ${err.message}`);
  }
  const keys = Array.isArray(doc) ? doc : doc?.keys;
  if (!Array.isArray(keys) || keys.length === 0) fail(`${path} holds no keys`);
  return keys.map((jwk, i) => {
    if (!jwk.kid) fail(`key ${i} of ${path} has no kid`);
    const alg = jwk.alg ?? defaultAlg(jwk);
    if (!alg) fail(`key ${jwk.kid} of ${path} has no alg and none can be inferred`);
    return { ...jwk, alg, use: jwk.use ?? 'sig' };
  });
}

const cfg = readConfig();
const keys = readKeys(cfg.keys_file);
const signer = { alg: keys[0].alg, kid: keys[0].kid };

// Members that are ours, not client metadata: the claims a client's tokens get.
const clientClaims = new Map();
const clients = cfg.clients.map((c) => {
  if (!c.client_id || !c.client_secret) fail('every client needs client_id and client_secret');
  const { claims, ...metadata } = c;
  if (claims !== undefined) clientClaims.set(c.client_id, claims);
  return {
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    ...metadata,
  };
});

const server = http.createServer();

function start(port) {
  const issuer = cfg.issuer ?? `http://${LOOPBACK}:${port}${cfg.path}`;
  const provider = new Provider(issuer, {
    jwks: { keys },
    clients,
    scopes: ['openid', 'offline_access', ...cfg.scopes.split(' ').filter(Boolean)],
    // Client credentials only: no login pages, no end-user interactions.
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      introspection: { enabled: true },
      revocation: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => cfg.resource,
        useGrantedResource: () => true,
        // Any absolute URI is a resource server; it is the token's audience.
        getResourceServerInfo: (_ctx, resource) => ({
          scope: cfg.scopes,
          audience: resource,
          accessTokenTTL: cfg.token_ttl,
          accessTokenFormat: 'jwt',
          jwt: { sign: signer },
        }),
      },
    },
    formats: {
      customizers: {
        jwt: (_ctx, token, jwt) => {
          for (const [name, value] of Object.entries(clientClaims.get(token.clientId) ?? {})) {
            if (value === null) delete jwt.payload[name];
            else jwt.payload[name] = value;
          }
        },
      },
    },
    ttl: {
      AccessToken: cfg.token_ttl,
      ClientCredentials: cfg.token_ttl,
    },
    enabledJWA: {
      idTokenSigningAlgValues: ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512',
        'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'],
    },
    // Client metadata defaults must name an algorithm some key offers, or every client is
    // refused (invalid_client_metadata) when the first key is not an RS256 one.
    clientDefaults: {
      grant_types: ['client_credentials'],
      id_token_signed_response_alg: signer.alg,
      response_types: [],
      token_endpoint_auth_method: 'client_secret_basic',
    },
    // Cookies are never set for the client_credentials grant; a fixed key keeps the warning away.
    cookies: { keys: ['revokd-test-cookie-key'] },
  });
  if (cfg.jwks_max_age !== null) {
    const jwksPath = provider.pathFor('jwks', { mountPath: '' });
    provider.use(async (ctx, next) => {
      await next();
      if (ctx.path === jwksPath && ctx.status === 200) ctx.set('Cache-Control', `max-age=${cfg.jwks_max_age}`);
    });
  }
  provider.on('server_error', (_ctx, err) => {
    process.stderr.write(`provider.mjs: server_error: ${err.stack ?? err}\n`);
  });
  provider.on('grant.error', (_ctx, err) => {
    process.stderr.write(`provider.mjs: grant error: ${err.message} ${err.error_description ?? ''}\n`);
  });
  const callback = provider.callback();
  server.on('request', (req, res) => {
    if (cfg.path) {
      // As a framework mounting the provider at the path would: oidc-provider finds its mount
      // path from originalUrl minus url.
      const rest = req.url.slice(cfg.path.length);
      if (!req.url.startsWith(cfg.path) || !(rest === '' || rest.startsWith('/') || rest.startsWith('?'))) {
        res.writeHead(404, { 'content-type': 'application/json' });
        res.end('{"error":"not_found"}');
        return;
      }
      req.originalUrl = req.url;
      req.url = rest.startsWith('/') ? rest : `/${rest}`;
    }
    callback(req, res);
  });
  process.stdout.write(`${JSON.stringify({
    event: 'listening', port, issuer, kids: keys.map((k) => k.kid), signing_kid: signer.kid,
  })}\n`);
}

// Listen first, so that port 0 gives the port the issuer names; requests wait until start()
// has installed the handler (it runs before the event loop turns again).
server.listen(cfg.port, LOOPBACK, () => start(server.address().port));
server.on('error', (err) => fail(`cannot listen on ${LOOPBACK}:${cfg.port}: ${err.message}`));

function shutdown() {
  server.close(() => process.exit(0));
  server.closeAllConnections();
  setTimeout(() => process.exit(0), 2000).unref();
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
