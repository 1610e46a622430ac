//! The partner CAs' certificate revocation lists (`DARTTS_TLS_CLIENT_CRL`), checked before
//! rustls is given them.
//!
//! rustls checks a list's signature only when a handshake needs it, and refuses a certificate
//! whose issuer has no list (`UnknownStatusPolicy::Deny`, its default). So a list from the wrong
//! CA, a damaged one, or a CA left without one would not stop the server: it would refuse every
//! partner of that CA, one handshake at a time, with nothing said at start-up. Each list is
//! therefore matched to a configured CA by issuer name and signature here, and every CA must
//! have one; a file that fails stops start-up, or is not taken on a reload.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer};
use x509_parser::certificate::X509Certificate;

/// The lists of one file, each from a configured CA.
pub struct Lists {
    pub ders: Vec<CertificateRevocationListDer<'static>>,
    /// The earliest `nextUpdate` of the lists (Unix seconds). After it the handshake refuses
    /// every certificate of that CA until a newer list is in the file, as OpenSSL does.
    pub next_update: Option<i64>,
    /// Revoked serial numbers over all lists, for the log.
    pub revoked: usize,
}

/// Reads the PEM `X509 CRL` blocks of `pem`; `cas` are the partner CA certificates.
pub fn read(pem: &[u8], cas: &[CertificateDer<'_>]) -> Result<Lists, String> {
    let ders = CertificateRevocationListDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("not PEM: {e}"))?;
    if ders.is_empty() {
        return Err("no X509 CRL block (PEM: -----BEGIN X509 CRL-----)".into());
    }
    let cas = cas
        .iter()
        .map(|der| {
            x509_parser::parse_x509_certificate(der)
                .map(|(_, cert)| cert)
                .map_err(|e| format!("a CA certificate that cannot be read: {e}"))
        })
        .collect::<Result<Vec<X509Certificate<'_>>, _>>()?;
    let mut lists = Lists {
        ders: Vec::with_capacity(ders.len()),
        next_update: None,
        revoked: 0,
    };
    let mut covered = vec![false; cas.len()];
    for (n, der) in ders.into_iter().enumerate() {
        let n = n + 1;
        let (_, list) = x509_parser::parse_x509_crl(&der)
            .map_err(|e| format!("block {n} is not a certificate revocation list: {e}"))?;
        let issuer = list.issuer();
        let (ca, cert) = cas
            .iter()
            .enumerate()
            .find(|(_, ca)| ca.subject().as_raw() == issuer.as_raw())
            .ok_or_else(|| {
                format!(
                    "list {n} is issued by \"{issuer}\", which is not a partner CA \
                     (DARTTS_TLS_CLIENT_CA)"
                )
            })?;
        list.verify_signature(cert.public_key())
            .map_err(|e| format!("list {n}'s signature is not \"{issuer}\"'s: {e}"))?;
        covered[ca] = true;
        lists.revoked += list.iter_revoked_certificates().count();
        if let Some(next) = list.next_update().map(|t| t.timestamp()) {
            lists.next_update = Some(lists.next_update.map_or(next, |n| n.min(next)));
        }
        lists.ders.push(der);
    }
    if let Some(ca) = covered.iter().position(|c| !c) {
        return Err(format!(
            "no list from the partner CA \"{}\": every CA in DARTTS_TLS_CLIENT_CA needs one, \
             or each certificate it issued would be refused",
            cas[ca].subject()
        ));
    }
    Ok(lists)
}

#[cfg(test)]
mod tests {
    use rcgen::{
        BasicConstraints, CertificateParams, CertificateRevocationListParams, DnType, IsCa, Issuer,
        KeyIdMethod, KeyPair, KeyUsagePurpose, RevokedCertParams, SerialNumber, date_time_ymd,
    };

    use super::*;

    fn ca(name: &str) -> (CertificateDer<'static>, Issuer<'static, KeyPair>) {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        (cert.der().clone(), Issuer::new(params, key))
    }

    fn list(issuer: &Issuer<'static, KeyPair>, revoked: &[u64], next_year: i32) -> String {
        CertificateRevocationListParams {
            this_update: date_time_ymd(2020, 1, 1),
            next_update: date_time_ymd(next_year, 1, 1),
            crl_number: SerialNumber::from(1),
            issuing_distribution_point: None,
            revoked_certs: revoked
                .iter()
                .map(|serial| RevokedCertParams {
                    serial_number: SerialNumber::from(*serial),
                    revocation_time: date_time_ymd(2021, 1, 1),
                    reason_code: None,
                    invalidity_date: None,
                })
                .collect(),
            key_identifier_method: KeyIdMethod::Sha256,
        }
        .signed_by(issuer)
        .unwrap()
        .pem()
        .unwrap()
    }

    #[test]
    fn one_list_per_ca_counted_with_the_earliest_next_update() {
        let (kr_ca, kr) = ca("KR partner CA");
        let (cn_ca, cn) = ca("CN partner CA");
        let pem = format!("{}{}", list(&kr, &[7, 8], 2090), list(&cn, &[9], 2080));
        let lists = read(pem.as_bytes(), &[kr_ca, cn_ca]).unwrap();
        assert_eq!(lists.ders.len(), 2);
        assert_eq!(lists.revoked, 3);
        assert_eq!(
            lists.next_update,
            Some(date_time_ymd(2080, 1, 1).unix_timestamp())
        );
    }

    #[test]
    fn a_list_must_come_from_a_configured_ca_and_each_ca_needs_one() {
        let (kr_ca, kr) = ca("KR partner CA");
        let (cn_ca, cn) = ca("CN partner CA");
        let (_, rogue) = ca("Someone else's CA");
        // The same name as the KR CA, another key: the signature gives it away.
        let (_, impostor) = ca("KR partner CA");
        let kr_list = list(&kr, &[], 2090);
        for (pem, cas, expected) in [
            (String::new(), vec![kr_ca.clone()], "no X509 CRL block"),
            (
                "-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n".to_owned(),
                vec![kr_ca.clone()],
                "block 1 is not a certificate revocation list",
            ),
            (
                list(&rogue, &[], 2090),
                vec![kr_ca.clone()],
                "\"CN=Someone else's CA\", which is not a partner CA",
            ),
            (
                list(&impostor, &[], 2090),
                vec![kr_ca.clone()],
                "list 1's signature is not \"CN=KR partner CA\"'s",
            ),
            (
                kr_list.clone(),
                vec![kr_ca.clone(), cn_ca.clone()],
                "no list from the partner CA \"CN=CN partner CA\"",
            ),
        ] {
            let error = read(pem.as_bytes(), &cas).err().unwrap();
            assert!(error.contains(expected), "{error}");
        }
        assert!(
            read(
                format!("{kr_list}{}", list(&cn, &[], 2090)).as_bytes(),
                &[kr_ca, cn_ca]
            )
            .is_ok()
        );
    }
}
