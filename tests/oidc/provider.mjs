// A real OpenID provider (the `oidc-provider` package) for the black-box tests in
// tests/tests/oidc.rs. Started by the test harness (tests/harness/lib.rs, `OidcProvider`):
//
//   node tests/oidc/provider.mjs [--port N] [--audience URI]...
//
// It listens on 127.0.0.1 (port 0 = any free port), builds the issuer from the port it got,
// and prints `oidc-provider listening on <issuer>` once it accepts connections.
//
// What is configured, and why:
// - One static confidential client, `dartts` / `dartts-test-secret` (client_secret_basic),
//   registered as a *native* application with loopback redirect URIs: oidc-provider then
//   ignores the port of a loopback redirect URI (RFC 8252 §7.3), so every `dartts serve` a test
//   starts on a random port can use `http://127.0.0.1:<port>/auth/callback`.
// - PKCE is required for every authorization request, so a client that forgets it fails.
// - Access tokens are JWTs for a resource server (`features.resourceIndicators`): the audience
//   (`urn:dartts:api` unless --audience says otherwise; every --audience is a known resource) is
//   the default resource of every authorization request, and `useGrantedResource` lets the
//   token endpoint use it without a `resource` parameter, which is what a generic OAuth client
//   such as the dartts server sends. A request may name another known resource explicitly
//   (`resource=urn:other:api`) to get a token for the wrong audience.
// - The JWT access token carries `nbf` (= `iat`), `preferred_username` and `email`, added by the
//   documented `formats.customizers.jwt` hook: dartts requires `nbf`, and some providers send
//   the user name in `preferred_username` or `email` rather than `sub`.
// - Sign-in is non-interactive: the authorization endpoint redirects to
//   `/interaction/<uid>`; a POST there with the form field `login=<name>` signs `<name>` in
//   (any name, no password: this is a test double of the agency's SSO). Consent is skipped by
//   granting first-party scopes and resources up front (`loadExistingGrant`, and no consent
//   prompt for the native client, see `firstPartyPolicy`), as an agency IdP does for its own
//   applications.
// - Test-only endpoints under /test (never part of a real provider):
//     GET  /test/keys    the current signing keys, private parts included, as PEM, so a test
//                        can sign claim variations with the provider's real key (and an
//                        `outsider` RSA key that is never published);
//     GET  /test/stats   how often the discovery document and the JWKS were fetched;
//     POST /test/rotate  generate a new RSA key that signs from now on (the old one stays
//                        published), as a provider rotating keys does.
import { createServer } from 'node:http';
import { generateKeyPairSync, randomBytes } from 'node:crypto';

import Provider, { interactionPolicy } from 'oidc-provider';

function args() {
  const out = { port: 0, audiences: [] };
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i += 1) {
    const value = argv[i + 1];
    switch (argv[i]) {
      case '--port': out.port = Number(value); i += 1; break;
      case '--audience': out.audiences.push(value); i += 1; break;
      default: throw new Error(`unknown argument ${argv[i]}`);
    }
  }
  if (process.env.OIDC_PORT) out.port = Number(process.env.OIDC_PORT);
  if (out.audiences.length === 0) out.audiences.push('urn:dartts:api', 'urn:other:api');
  return out;
}

const { port, audiences } = args();
const DEFAULT_AUDIENCE = audiences[0];

function newKey(kind) {
  const kid = `${kind}-${randomBytes(6).toString('hex')}`;
  const pair = kind === 'rsa'
    ? generateKeyPairSync('rsa', { modulusLength: 2048 })
    : generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk = {
    ...pair.privateKey.export({ format: 'jwk' }),
    kid,
    use: 'sig',
    alg: kind === 'rsa' ? 'RS256' : 'ES256',
  };
  return {
    kid,
    jwk,
    privatePem: pair.privateKey.export({ format: 'pem', type: 'pkcs8' }),
    publicPem: pair.publicKey.export({ format: 'pem', type: 'spki' }),
    publicPkcs1Pem: kind === 'rsa' ? pair.publicKey.export({ format: 'pem', type: 'pkcs1' }) : undefined,
  };
}

// The first RSA key signs; older ones stay in the JWKS so tokens they signed still verify.
let rsaKeys = [newKey('rsa')];
const ecKey = newKey('ec');
// Never published: what a forger who generates their own key has.
const outsider = newKey('rsa');
const stats = { discovery: 0, jwks: 0 };

// oidc-provider asks native clients for consent on every request; our client is native only
// for its port-agnostic loopback redirect URIs, so that check is dropped (the other consent
// checks stay, and `loadExistingGrant` satisfies them).
function firstPartyPolicy() {
  const policy = interactionPolicy.base();
  policy.get('consent').checks.remove('native_client_prompt');
  return policy;
}

function build(issuer) {
  const provider = new Provider(issuer, {
    clients: [{
      client_id: 'dartts',
      client_secret: 'dartts-test-secret',
      application_type: 'native',
      redirect_uris: ['http://127.0.0.1/auth/callback', 'http://127.0.0.1/test-callback'],
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
    }],
    jwks: { keys: [...rsaKeys.map((k) => k.jwk), ecKey.jwk] },
    cookies: { keys: ['dartts-test-cookie-key'] },
    pkce: { required: () => true },
    claims: {
      openid: ['sub'],
      profile: ['preferred_username'],
      email: ['email'],
    },
    features: {
      devInteractions: { enabled: false },
      resourceIndicators: {
        enabled: true,
        defaultResource: async (_ctx, _client, oneOf) => oneOf ?? DEFAULT_AUDIENCE,
        useGrantedResource: async () => true,
        getResourceServerInfo: async (_ctx, resource) => {
          if (!audiences.includes(resource)) throw new Provider.errors.InvalidTarget();
          return {
            scope: 'api',
            audience: resource,
            accessTokenTTL: 600,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg: 'RS256' } },
          };
        },
      },
    },
    formats: {
      customizers: {
        jwt: async (_ctx, token, jwt) => {
          jwt.payload.nbf = jwt.payload.iat;
          if (token.accountId) {
            jwt.payload.preferred_username = token.accountId;
            jwt.payload.email = `${token.accountId}@agency.test`;
          }
        },
      },
    },
    findAccount: async (_ctx, id) => ({
      accountId: id,
      claims: async () => ({ sub: id, preferred_username: id, email: `${id}@agency.test` }),
    }),
    interactions: { policy: firstPartyPolicy(), url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    loadExistingGrant: async (ctx) => {
      const grantId = ctx.oidc.result?.consent?.grantId
        || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
      if (grantId) return ctx.oidc.provider.Grant.find(grantId);
      const grant = new ctx.oidc.provider.Grant({
        clientId: ctx.oidc.client.clientId,
        accountId: ctx.oidc.session.accountId,
      });
      grant.addOIDCScope('openid profile email');
      for (const audience of audiences) grant.addResourceScope(audience, 'api');
      await grant.save();
      return grant;
    },
    ttl: { AuthorizationCode: 60, Interaction: 600, Session: 3600, Grant: 3600 },
    renderError: async (ctx, out) => {
      ctx.type = 'json';
      ctx.body = out;
    },
  });
  // Plain http on 127.0.0.1 only; the issuer is http://127.0.0.1:<port>.
  provider.proxy = false;
  return provider;
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk) => { body += chunk; });
    req.on('end', () => resolve(body));
    req.on('error', reject);
  });
}

function json(res, status, value) {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(JSON.stringify(value));
}

function keyView(k) {
  return {
    kid: k.kid, privatePem: k.privatePem, publicPem: k.publicPem, publicPkcs1Pem: k.publicPkcs1Pem,
  };
}

let provider;
let callback;

async function handle(req, res) {
  const url = new URL(req.url, provider.issuer);
  try {
    if (url.pathname === '/test/keys' && req.method === 'GET') {
      return json(res, 200, {
        rsa: keyView(rsaKeys[0]), ec: keyView(ecKey), outsider: keyView(outsider),
      });
    }
    if (url.pathname === '/test/stats' && req.method === 'GET') {
      return json(res, 200, stats);
    }
    if (url.pathname === '/test/rotate' && req.method === 'POST') {
      rsaKeys = [newKey('rsa'), ...rsaKeys];
      // A new Provider instance picks up the new key set; the in-memory adapter keeps its
      // store at module level, so sessions and codes survive the swap.
      provider = build(provider.issuer);
      callback = provider.callback();
      return json(res, 200, { kid: rsaKeys[0].kid });
    }
    const interaction = url.pathname.match(/^\/interaction\/([\w-]+)$/);
    if (interaction && req.method === 'GET') {
      const { uid, prompt } = await provider.interactionDetails(req, res);
      res.writeHead(200, { 'content-type': 'text/html' });
      return res.end(`<!doctype html><title>Sign in</title><p>prompt: ${prompt.name}</p>
<form method="post" action="/interaction/${uid}"><input name="login"><button>Sign in</button></form>`);
    }
    if (interaction && req.method === 'POST') {
      const details = await provider.interactionDetails(req, res);
      const login = new URLSearchParams(await readBody(req)).get('login');
      if (details.prompt.name !== 'login' || !login) {
        return json(res, 400, { error: 'expected a login prompt and a login field' });
      }
      return provider.interactionFinished(req, res, { login: { accountId: login } }, {
        mergeWithLastSubmission: false,
      });
    }
    if (url.pathname === '/.well-known/openid-configuration') stats.discovery += 1;
    if (url.pathname === '/jwks') stats.jwks += 1;
    return callback(req, res);
  } catch (err) {
    return json(res, 500, { error: 'server_error', error_description: String(err) });
  }
}

const server = createServer((req, res) => { handle(req, res); });
server.listen(port, '127.0.0.1', () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  provider = build(issuer);
  callback = provider.callback();
  process.stdout.write(`oidc-provider listening on ${issuer}\n`);
});

// The harness kills this process when the test ends; also exit if its stdin closes.
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
