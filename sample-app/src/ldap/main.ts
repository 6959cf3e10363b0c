import { Slapd, slapdInstalled } from './slapd.js';
import { SAMPLE_DIRECTORY } from './directory.js';

/**
 * `npm run ldap`: the sample's directory on a real OpenLDAP, until Ctrl-C. Then start the site
 * with the printed LDAP_URL and dana and erin log in through it.
 */
if (!slapdInstalled()) {
  console.error("Debian's slapd, ldap-utils and openssl are needed: sudo apt-get install -y slapd ldap-utils openssl");
  process.exit(1);
}
const port = Number(process.env.LDAP_PORT ?? 3389);
const slapd = await Slapd.start({ ...SAMPLE_DIRECTORY, port });
console.log(`The sample's directory is up. In another terminal:\n\n  LDAP_URL=${slapd.url} npm start\n\nCtrl-C stops it.`);
const stop = () => {
  slapd.close().then(() => process.exit(0));
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
