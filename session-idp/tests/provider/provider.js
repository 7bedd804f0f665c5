// oidc-provider for session-idp's integration tests. Test-only: dev interactions (any
// login name), in-memory storage, keys generated per start.
//
// Env: PROVIDER_PORT (required), CLIENT_ID, CLIENT_SECRET, REDIRECT_URI,
// BACKCHANNEL_LOGOUT_URI. Prints "oidc-provider listening on http://127.0.0.1:PORT" once
// it accepts connections.
import Provider from 'oidc-provider';

const port = Number(process.env.PROVIDER_PORT);
if (!Number.isInteger(port) || port <= 0) {
  console.error('PROVIDER_PORT must be a port number');
  process.exit(2);
}
const issuer = `http://127.0.0.1:${port}`;

const configuration = {
  clients: [{
    client_id: process.env.CLIENT_ID ?? 'session-idp-test',
    client_secret: process.env.CLIENT_SECRET ?? 'session-idp-test-secret',
    redirect_uris: [process.env.REDIRECT_URI ?? 'http://127.0.0.1:1/oidc/callback'],
    response_types: ['code'],
    grant_types: ['authorization_code'],
    token_endpoint_auth_method: 'client_secret_basic',
    backchannel_logout_uri: process.env.BACKCHANNEL_LOGOUT_URI ?? 'http://127.0.0.1:1/oidc/backchannel-logout',
    backchannel_logout_session_required: true,
  }],
  features: {
    backchannelLogout: { enabled: true },
    devInteractions: { enabled: true },
    rpInitiatedLogout: { enabled: true },
  },
  // PKCE (S256) for every client, confidential ones included.
  pkce: { required: () => true },
  cookies: { keys: ['session-idp-test-cookie-key-not-secret'] },
  // The provider refuses to call special-use addresses (SSRF protection); the test's
  // back-channel receiver is on 127.0.0.1, so outgoing requests skip that dispatcher.
  fetch: (url, options) => {
    const { dispatcher, ...rest } = options;
    return globalThis.fetch(url, rest);
  },
};

const provider = new Provider(issuer, configuration);
provider.on('backchannel.error', (ctx, err) => {
  console.error(`backchannel.error: ${err.message}`);
});
provider.on('server_error', (ctx, err) => {
  console.error(`server_error: ${err.stack}`);
});

const server = provider.listen(port, '127.0.0.1', () => {
  console.log(`oidc-provider listening on ${issuer}`);
});
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
