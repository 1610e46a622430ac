// Runs graphql-http's server audit against DARTTS_URL (…/graphql) with the bearer token in
// DARTTS_TOKEN, prints one line per audit and exits 1 when any MUST or SHOULD fails (MAY is
// reported, not required). Used by tests/tests/http_conformance.rs.
import { serverAudits } from 'graphql-http';

const url = process.env.DARTTS_URL;
const token = process.env.DARTTS_TOKEN;
if (!url || !token) {
  console.error('DARTTS_URL and DARTTS_TOKEN are required');
  process.exit(2);
}
const fetchFn = (input, init = {}) => {
  const headers = new Headers(init.headers);
  headers.set('authorization', `Bearer ${token}`);
  return fetch(input, { ...init, headers });
};
let failed = 0;
for (const audit of serverAudits({ url, fetchFn })) {
  const result = await audit.fn();
  const required = !audit.name.startsWith('MAY');
  if (result.status !== 'ok' && required) failed += 1;
  const detail = result.status === 'ok' ? '' : ` -- ${result.reason}`;
  console.log(`${result.status.toUpperCase().padEnd(6)} ${audit.id} ${audit.name}${detail}`);
}
console.log(failed === 0 ? 'all MUST and SHOULD audits pass' : `${failed} MUST/SHOULD audits fail`);
process.exit(failed === 0 ? 0 : 1);
