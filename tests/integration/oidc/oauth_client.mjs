// An OAuth client library's own calls against revokd: openid-client's tokenIntrospection (RFC
// 7662) and tokenRevocation (RFC 7009), exactly as an application makes them. Run by
// tests/integration/test_oauth.py.
//
//   node oauth_client.mjs < REQUEST
//
// REQUEST (JSON on stdin, so that no secret or token is on a command line):
//   {"server": {"issuer", "revocation_endpoint", "introspection_endpoint"},
//    "client_id", "client_secret",
//    "auth": "basic" (ClientSecretBasic) | "post" (ClientSecretPost) | "default" (the library's
//            choice for a client with a secret),
//    "steps": [{"op": "introspect" | "revoke", "token", "hint"?}, ...]}
//
// Prints one JSON array on stdout, one outcome per step, in order, and never a token or secret:
//   {"op", "ok": true, "result"?: the introspection response as the library returns it}
//   {"op", "ok": false, "name", "code", "status", "error", "challenges"}: what the library threw
//   (an OAuth error in the body: ResponseBodyError with "error"; a 401 with WWW-Authenticate:
//   WWWAuthenticateChallengeError with the challenges' schemes).
// The steps run one after the other; a failed step does not stop the next. Exit status 0 unless
// REQUEST cannot be read.

import * as client from 'openid-client';

const TIMEOUT_SECONDS = 10;

function fail(message) {
  process.stderr.write(`oauth_client.mjs: ${message}\n`);
  process.exit(2);
}

async function readStdin() {
  const chunks = [];
  for await (const chunk of process.stdin) {
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function authentication(kind) {
  switch (kind) {
    case 'basic':
      return client.ClientSecretBasic();
    case 'post':
      return client.ClientSecretPost();
    case 'default':
      return undefined;
    default:
      return fail(`unknown auth ${JSON.stringify(kind)}`);
  }
}

function describe(err) {
  const out = { ok: false, name: err?.name, code: err?.code, status: err?.status };
  if (typeof err?.error === 'string') {
    out.error = err.error;
  }
  if (Array.isArray(err?.cause) && err.cause.every((c) => typeof c?.scheme === 'string')) {
    out.challenges = err.cause.map((c) => c.scheme);
  }
  if (out.status === undefined && err?.cause instanceof Response) {
    out.status = err.cause.status;
  }
  return out;
}

let request;
try {
  request = JSON.parse(await readStdin());
} catch (err) {
  fail(`stdin is not JSON: ${err.message}`);
}

const config = new client.Configuration(request.server, request.client_id,
  { client_secret: request.client_secret }, authentication(request.auth));
// revokd runs on loopback over plain http in the tests.
client.allowInsecureRequests(config);
config.timeout = TIMEOUT_SECONDS;

const outcomes = [];
for (const step of request.steps) {
  const parameters = step.hint !== undefined ? { token_type_hint: step.hint } : undefined;
  try {
    if (step.op === 'introspect') {
      const result = await client.tokenIntrospection(config, step.token, parameters);
      outcomes.push({ op: step.op, ok: true, result: { ...result } });
    } else if (step.op === 'revoke') {
      await client.tokenRevocation(config, step.token, parameters);
      outcomes.push({ op: step.op, ok: true });
    } else {
      fail(`unknown op ${JSON.stringify(step.op)}`);
    }
  } catch (err) {
    outcomes.push({ op: step.op, ...describe(err) });
  }
}
process.stdout.write(`${JSON.stringify(outcomes)}\n`);
