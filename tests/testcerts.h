/*
 * testcerts — throwaway keys and self-signed certificates for tests, made
 * with the OpenSSL API so no test depends on the openssl command or on
 * certificates that expire in the repository.
 */
#ifndef SLUICE_TESTCERTS_H
#define SLUICE_TESTCERTS_H

/* Writes dir/basename.crt and dir/basename.key (PEM, key mode 0600): a new
 * P-256 (ecdsa=1) or RSA-2048 (ecdsa=0) key and a certificate for it, CN and
 * subjectAltName DNS = common_name, valid from a day ago for ten years.
 * Returns 0, or -1 (with the reason on stderr). */
int testcerts_write(const char *dir, const char *basename,
		    const char *common_name, int ecdsa);

/* Lowercase hex SHA-256 of the DER form of the first certificate in
 * crt_path, as "openssl x509 -fingerprint -sha256" shows it without colons.
 * Returns 0, or -1. */
int testcerts_fingerprint(const char *crt_path, char out_hex[65]);

/* What testcerts_make writes; zero fields take the default in brackets. */
struct testcerts_spec {
	const char *cn;          /* subject CN [basename] */
	const char *san;         /* subjectAltName, OpenSSL syntax ("DNS:a.test,
				  * DNS:*.b.test"); NULL: none ("" too) */
	int ecdsa;               /* P-256 key, else RSA-2048 */
	long not_before;         /* seconds from now; 0: a day ago */
	long not_after;          /* seconds from now; 0: in ten years */
	const char *issuer;      /* basename in dir of the CA that signs it
				  * (its .crt and .key); NULL: self-signed */
	int ca;                  /* a CA: CA:TRUE, keyCertSign and cRLSign */
	int chain;               /* append the issuer's .crt (and so its own
				  * chain) after the certificate */
	const char *forged_by;   /* basename whose key signs instead of the
				  * issuer's: a certificate whose signature
				  * does not verify; NULL: the issuer's */
};

/* Writes dir/basename.crt (the certificate, then with chain its issuer's
 * chain) and dir/basename.key. Returns 0, or -1 (reason on stderr). */
int testcerts_make(const char *dir, const char *basename, const struct testcerts_spec *spec);

/* Writes dir/out, a PEM CRL signed by CA ca (dir/ca.crt, dir/ca.key) that
 * revokes the certificates dir/NAME.crt for every NAME of revoked
 * (NULL-terminated; NULL: revokes nothing), valid from an hour ago for a
 * week. 0 or -1. */
int testcerts_crl(const char *dir, const char *ca, const char *const *revoked, const char *out);

/* Writes dir/out, a DER OCSP response (successful, basic, SHA-1 CertID)
 * about dir/cert.crt issued by dir/issuer.crt, signed with dir/issuer.key:
 * status V_OCSP_CERTSTATUS_GOOD or _REVOKED, thisUpdate and nextUpdate in
 * seconds from now (has_next 0: no nextUpdate). 0 or -1. */
int testcerts_ocsp(const char *dir, const char *cert, const char *issuer, int status,
		   long this_update, int has_next, long next_update, const char *out);

/* Writes path: n random session ticket keys, one base64 line of 80 bytes
 * each (sluice's ticket_keys format), mode 0600. 0 or -1. */
int testcerts_ticket_keys(const char *path, int n);

#endif
