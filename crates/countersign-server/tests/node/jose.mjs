// panva/jose against countersign, for tests/it/e2e/jwks.rs.
//
// stdin: {"discovery": URL, "issuer": ..., "audience": ..., "tokens": [...], "exp": N}
// stdout: {
//   "issuer", "jwks_uri": what discovery said;
//   "verified": for each token, {"payload", "kid", "alg"} or {"error": code}: verified with
//     createRemoteJWKSet(jwks_uri) and jwtVerify checking iss and aud, EdDSA and ES256 only;
//   "jwks": a JWK Set of keys jose made (kids "jose-EdDSA", "jose-ES256");
//   "tokens": tokens jose signed with them.
// }
import { SignJWT, createRemoteJWKSet, exportJWK, generateKeyPair, jwtVerify } from 'jose';

let input = '';
for await (const chunk of process.stdin) input += chunk;
const req = JSON.parse(input);

const meta = await (await fetch(req.discovery)).json();
const JWKS = createRemoteJWKSet(new URL(meta.jwks_uri));
const verified = [];
for (const token of req.tokens) {
  try {
    const options = { issuer: req.issuer, algorithms: ['EdDSA', 'ES256'] };
    if (req.audience != null) options.audience = req.audience;
    const { payload, protectedHeader } = await jwtVerify(token, JWKS, options);
    verified.push({ payload, kid: protectedHeader.kid, alg: protectedHeader.alg });
  } catch (e) {
    verified.push({ error: e.code ?? String(e) });
  }
}

const keys = [];
const tokens = [];
for (const alg of ['EdDSA', 'ES256']) {
  const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true });
  const jwk = await exportJWK(publicKey);
  const kid = `jose-${alg}`;
  keys.push({ ...jwk, kid, alg, use: 'sig' });
  tokens.push(
    await new SignJWT({ username: 'from_jose' })
      .setProtectedHeader({ alg, kid, typ: 'JWT' })
      .setSubject('jose')
      .setIssuer('https://jose.example')
      .setExpirationTime(req.exp)
      .sign(privateKey),
  );
}

process.stdout.write(
  JSON.stringify({ issuer: meta.issuer, jwks_uri: meta.jwks_uri, verified, jwks: { keys }, tokens }),
);
