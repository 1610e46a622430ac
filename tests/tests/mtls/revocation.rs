//! Withdrawing a partner's certificate: the partner CA's revocation list
//! (`DARTTS_TLS_CLIENT_CRL`), checked at start-up, read again while serving, and applied to new
//! handshakes and to connections already open alike.

use rcgen::{
    CertificateRevocationListParams, KeyIdMethod, RevokedCertParams, SerialNumber, date_time_ymd,
};

use super::*;

/// A revocation list of `issuer` naming `revoked`, valid until January of `until`.
fn revocation_list(issuer: &Issuer<'static, KeyPair>, revoked: &[u64], until: i32) -> String {
    CertificateRevocationListParams {
        this_update: date_time_ymd(2000, 1, 1),
        next_update: date_time_ymd(until, 1, 1),
        crl_number: SerialNumber::from(1),
        issuing_distribution_point: None,
        revoked_certs: revoked
            .iter()
            .map(|serial| RevokedCertParams {
                serial_number: SerialNumber::from(*serial),
                revocation_time: date_time_ymd(2000, 6, 1),
                reason_code: None,
                invalidity_date: None,
            })
            .collect(),
        key_identifier_method: KeyIdMethod::Sha256,
    }
    .signed_by(issuer)
    .expect("signed list")
    .pem()
    .expect("pem")
}

/// `list` re-signed by `issuer` after `edit` changed the elements of its `tbsCertList`: the
/// kinds of list rcgen does not make (a delta list, a version 1 list), which `crl::read`
/// lets through and rustls refuses.
fn edited_list(
    list: &str,
    issuer: &Issuer<'static, KeyPair>,
    edit: impl FnOnce(&mut Vec<Vec<u8>>),
) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let body: String = list.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = b64.decode(body).expect("base64");
    let outer = der_elements(der_body(&der)); // tbsCertList, signatureAlgorithm, signature
    let mut parts = der_elements(der_body(&outer[0]));
    edit(&mut parts);
    let tbs = der_element(0x30, &parts.concat());
    let mut bits = vec![0]; // a BIT STRING with no unused bits
    bits.extend(rcgen::SigningKey::sign(issuer.key(), &tbs).expect("sign"));
    let signed = der_element(
        0x30,
        &[tbs, outer[1].clone(), der_element(0x03, &bits)].concat(),
    );
    let lines: Vec<String> = b64
        .encode(signed)
        .as_bytes()
        .chunks(64)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect();
    format!(
        "-----BEGIN X509 CRL-----\n{}\n-----END X509 CRL-----\n",
        lines.join("\n")
    )
}

/// The `tbsCertList` edit that makes a list a delta list: a critical `deltaCRLIndicator`
/// (2.5.29.27, base list number 1) added to its extensions, the last element.
fn made_delta(parts: &mut Vec<Vec<u8>>) {
    let extensions = parts.pop().expect("crlExtensions");
    let list = der_elements(der_body(&extensions)).remove(0);
    let delta = der_element(
        0x30,
        &[
            der_element(0x06, &[0x55, 0x1d, 0x1b]),
            der_element(0x01, &[0xff]),
            der_element(0x04, &der_element(0x02, &[1])),
        ]
        .concat(),
    );
    let list = der_element(0x30, &[der_body(&list), delta.as_slice()].concat());
    parts.push(der_element(0xa0, &list));
}

/// The `tbsCertList` edit that makes a list version 1: no version and no extensions.
fn made_version_1(parts: &mut Vec<Vec<u8>>) {
    assert_eq!(parts[0], [0x02, 0x01, 0x01], "version 2");
    parts.remove(0);
    parts.pop();
}

/// The content of the DER element `element` (definite lengths only, as DER has).
fn der_body(element: &[u8]) -> &[u8] {
    let (header, _) = der_header(element);
    &element[header..]
}

/// The length of the element's header and of its content.
fn der_header(element: &[u8]) -> (usize, usize) {
    match element[1] {
        short if short < 0x80 => (2, usize::from(short)),
        long => {
            let n = usize::from(long & 0x7f);
            let len = element[2..2 + n]
                .iter()
                .fold(0, |len, b| len << 8 | usize::from(*b));
            (2 + n, len)
        }
    }
}

/// The elements that follow one another in `content`, each whole.
fn der_elements(mut content: &[u8]) -> Vec<Vec<u8>> {
    let mut elements = Vec::new();
    while !content.is_empty() {
        let (header, len) = der_header(content);
        elements.push(content[..header + len].to_vec());
        content = &content[header + len..];
    }
    elements
}

fn der_element(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut element = vec![tag];
    match u8::try_from(content.len()) {
        Ok(short) if short < 0x80 => element.push(short),
        _ => {
            let len = content.len().to_be_bytes();
            let len: Vec<u8> = len.into_iter().skip_while(|b| *b == 0).collect();
            element.push(0x80 | u8::try_from(len.len()).expect("length of a length"));
            element.extend(len);
        }
    }
    element.extend_from_slice(content);
    element
}

impl Pki {
    /// Puts `pem` in the revocation list file whole (written aside, then renamed, as a
    /// mounted secret changes) and returns its path.
    fn publish(&self, pem: &str) -> String {
        let path = self.dir.join("partner-crl.pem");
        let aside = self.dir.join("partner-crl.pem.new");
        std::fs::write(&aside, pem).expect("write list");
        std::fs::rename(&aside, &path).expect("rename list");
        path.to_str().expect("utf-8 path").to_owned()
    }
}

/// Waits until the server's `/metrics` holds `line` (the file is read every few seconds).
async fn until_metric(server: &dartts_tests::Server, line: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let metrics = server.metrics().await;
        if metrics.lines().any(|l| l == line) {
            return;
        }
        assert!(Instant::now() < deadline, "no {line:?} in\n{metrics}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Whether a fresh connection with `identity` gets through the handshake.
async fn handshake(pki: &Pki, mtls: &str, identity: &reqwest::Identity) -> bool {
    try_post(&pki.client(Some(identity)), mtls, ME, json!({}), None)
        .await
        .is_ok()
}

#[tokio::test]
async fn a_revoked_certificate_is_refused_at_the_handshake_and_on_an_open_connection() {
    let (env, pki) = with_pki(TestEnv::new(Backend::Postgres).await);
    let crl = pki.publish(&revocation_list(&pki.partner_ca, &[CN_SERIAL], 2099));
    let env = env.with_env("DARTTS_TLS_CLIENT_CRL", &crl).with_metrics();
    partner(&env, "kr-partner", "KR").await;
    partner(&env, "cn-partner", "CN").await;
    let (server, mtls) = env.serve_mtls().await;

    // Revoked before the server started: the handshake fails, so no sign-in is possible. Tried
    // three times, recorded once (a client retrying in a loop does not fill the log).
    for _ in 0..3 {
        assert!(!handshake(&pki, &mtls, &pki.cn).await);
    }
    let kr = pki.client(Some(&pki.kr));
    let answer = login(&kr, &mtls, "kr-partner", PASSWORD).await;
    let token = answer.body["data"]["login"]["token"]
        .as_str()
        .unwrap_or_else(|| panic!("no token: {}", answer.body))
        .to_owned();
    let me = post(&kr, &mtls, ME, json!({}), Some(&token)).await;
    assert_eq!(me.status, 200, "{}", me.body);
    assert!(
        server
            .metrics()
            .await
            .lines()
            .any(|l| l == "dartts_partner_crl_revoked 1")
    );

    // Revoked while the partner's connection is open: its next request there is refused (an
    // answer, so on the connection already open: a new handshake would fail instead).
    pki.publish(&revocation_list(
        &pki.partner_ca,
        &[CN_SERIAL, KR_SERIAL],
        2099,
    ));
    let deadline = Instant::now() + Duration::from_secs(30);
    let refused = loop {
        let answer = post(&kr, &mtls, ME, json!({}), Some(&token)).await;
        if answer.status != 200 {
            break answer;
        }
        assert!(Instant::now() < deadline, "still served: {}", answer.body);
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(refused.status, 401, "{}", refused.body);
    assert_eq!(refused.codes(), vec!["UNAUTHENTICATED"]);
    assert_eq!(refused.body["data"], Value::Null);
    let message = refused.body["errors"][0]["message"].as_str().unwrap_or("");
    assert!(message.contains("no longer accepted"), "{message}");
    // That answer closed the connection; the next one meets the new list at the handshake.
    assert!(
        try_post(&kr, &mtls, ME, json!({}), Some(&token))
            .await
            .is_err()
    );
    assert!(!handshake(&pki, &mtls, &pki.kr).await);
    assert!(
        server
            .metrics()
            .await
            .lines()
            .any(|l| l == "dartts_partner_crl_revoked 2")
    );
    // Another CA's certificate: refused at the handshake and not audited (anyone can make one).
    assert!(!handshake(&pki, &mtls, &pki.rogue).await);
    // The refusals are audited, naming the certificate: the request on the open connection,
    // and each revoked certificate's handshakes once (CN's three, KR's two).
    let audited = |what: &str| {
        format!(
            "SELECT COUNT(*) FROM audit_events WHERE event_type = 'access_denied' \
             AND outcome = 'denied' AND detail LIKE '%client certificate%' AND {what}"
        )
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while env
        .scalar(&audited("detail LIKE '%at the handshake: revoked%'"))
        .await
        < 2
    {
        assert!(Instant::now() < deadline, "handshake refusals not audited");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let distinct = "SELECT COUNT(DISTINCT detail) FROM audit_events \
                    WHERE detail LIKE '%at the handshake: revoked%'";
    assert_eq!(env.scalar(distinct).await, 2, "one certificate each");
    // Where from, as every audit record says.
    assert_eq!(
        env.scalar(&audited(
            "detail LIKE '%at the handshake: revoked%' AND source = '127.0.0.1'"
        ))
        .await,
        2
    );
    assert_eq!(
        env.scalar(&audited(
            "detail NOT LIKE '%at the handshake%' AND source = '127.0.0.1'"
        ))
        .await,
        1
    );
}

#[tokio::test]
async fn the_list_file_is_checked_at_start_up_and_a_bad_change_keeps_the_lists_in_force() {
    let (env, pki) = with_pki(TestEnv::new(Backend::Sqlite).await);
    let crl = pki.publish("");
    let env = env.with_env("DARTTS_TLS_CLIENT_CRL", &crl).with_metrics();
    for (pem, expected) in [
        ("not a list".to_owned(), "no X509 CRL block"),
        (
            revocation_list(&pki.rogue_ca, &[], 2099),
            "which is not a partner CA",
        ),
        // Signed by the partner CA and read by `crl::read`, but not a list rustls can use.
        (
            edited_list(
                &revocation_list(&pki.partner_ca, &[CN_SERIAL], 2099),
                &pki.partner_ca,
                made_delta,
            ),
            "a delta list",
        ),
        (
            edited_list(
                &revocation_list(&pki.partner_ca, &[CN_SERIAL], 2099),
                &pki.partner_ca,
                made_version_1,
            ),
            "version 2 is needed",
        ),
    ] {
        pki.publish(&pem);
        let run = env.run(&["serve"]).await;
        assert_eq!(run.code, Some(1), "{run:?}");
        assert!(
            run.stderr.contains("DARTTS_TLS_CLIENT_CRL"),
            "{}",
            run.stderr
        );
        assert!(run.stderr.contains(expected), "{}", run.stderr);
    }

    // Re-signed without a change, as the two lists above were with theirs: the list serves, so
    // what refused them was their change.
    pki.publish(&edited_list(
        &revocation_list(&pki.partner_ca, &[CN_SERIAL], 2099),
        &pki.partner_ca,
        |_| {},
    ));
    let (server, mtls) = env.serve_mtls().await;
    assert!(handshake(&pki, &mtls, &pki.kr).await);
    assert!(!handshake(&pki, &mtls, &pki.cn).await);

    // A damaged or foreign file is refused while serving: the lists read before still hold.
    pki.publish("-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n");
    until_metric(
        &server,
        "dartts_partner_crl_reloads_total{outcome=\"refused\"} 1",
    )
    .await;
    pki.publish(&revocation_list(&pki.rogue_ca, &[], 2099));
    until_metric(
        &server,
        "dartts_partner_crl_reloads_total{outcome=\"refused\"} 2",
    )
    .await;
    assert!(handshake(&pki, &mtls, &pki.kr).await);
    assert!(!handshake(&pki, &mtls, &pki.cn).await);

    // A good change after them is taken: a certificate taken off the list is accepted again.
    pki.publish(&revocation_list(&pki.partner_ca, &[], 2099));
    until_metric(
        &server,
        "dartts_partner_crl_reloads_total{outcome=\"ok\"} 1",
    )
    .await;
    assert!(handshake(&pki, &mtls, &pki.cn).await);
    assert!(handshake(&pki, &mtls, &pki.kr).await);
}

#[tokio::test]
async fn an_out_of_date_list_refuses_its_cas_certificates() {
    let (env, pki) = with_pki(TestEnv::new(Backend::Sqlite).await);
    let crl = pki.publish(&revocation_list(&pki.partner_ca, &[], 2001));
    let env = env.with_env("DARTTS_TLS_CLIENT_CRL", &crl).with_metrics();
    let (server, mtls) = env.serve_mtls().await;
    assert!(
        server
            .metrics()
            .await
            .lines()
            .any(|l| l == "dartts_partner_crl_next_update_seconds 978307200"),
        "2001-01-01"
    );
    // Nothing vouches for a certificate any more, not even one never revoked.
    assert!(!handshake(&pki, &mtls, &pki.kr).await);
    pki.publish(&revocation_list(&pki.partner_ca, &[], 2099));
    until_metric(
        &server,
        "dartts_partner_crl_reloads_total{outcome=\"ok\"} 1",
    )
    .await;
    assert!(handshake(&pki, &mtls, &pki.kr).await);
}
