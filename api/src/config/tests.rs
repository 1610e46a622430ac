use super::*;

fn raw() -> Raw {
    Raw::default()
}

#[test]
fn defaults_are_the_embedded_single_node() {
    let s = Settings::from_raw(raw()).unwrap();
    assert_eq!(s.database_kind, DatabaseKind::Sqlite);
    assert!(s.is_embedded());
    assert!(s.graphiql);
    assert_eq!(s.listen.to_string(), DEFAULT_LISTEN);
    assert_eq!(s.instance, Instance::Domestic);
    assert!(s.database_url.expose().contains("dartts-data"));
    assert_eq!(s.retention_years, DEFAULT_RETENTION_YEARS);
}

#[test]
fn retention_is_whole_years_within_bounds() {
    let s = Settings::from_raw(Raw {
        retention_years: Some(" 7 ".into()),
        ..raw()
    })
    .unwrap();
    assert_eq!(s.retention_years, 7);
    assert_eq!(retention_years("1"), Ok(1));
    assert_eq!(retention_years("100"), Ok(100));
    for bad in ["0", "101", "1.5", "", "ten", "-1"] {
        assert!(retention_years(bad).is_err(), "{bad:?} accepted");
    }
}

#[test]
fn bad_values_name_the_setting() {
    for (raw, setting) in [
        (
            Raw {
                listen: Some("8080".into()),
                ..raw()
            },
            "DARTTS_LISTEN",
        ),
        (
            Raw {
                instance: Some("mars".into()),
                ..raw()
            },
            "DARTTS_INSTANCE",
        ),
        (
            Raw {
                database_url: Some("mysql://x".into()),
                ..raw()
            },
            "DARTTS_DATABASE_URL",
        ),
        (
            Raw {
                redis_url: Some("http://x".into()),
                ..raw()
            },
            "DARTTS_REDIS_URL",
        ),
        (
            Raw {
                graphiql: Some("maybe".into()),
                ..raw()
            },
            "DARTTS_GRAPHIQL",
        ),
        (
            Raw {
                audit: Some("off".into()),
                ..raw()
            },
            "DARTTS_AUDIT",
        ),
        (
            Raw {
                retention_years: Some("0".into()),
                ..raw()
            },
            "DARTTS_RETENTION_YEARS",
        ),
        (
            Raw {
                retention_years: Some("ten".into()),
                ..raw()
            },
            "DARTTS_RETENTION_YEARS",
        ),
        (
            Raw {
                retention_years: Some("-3".into()),
                ..raw()
            },
            "DARTTS_RETENTION_YEARS",
        ),
        (
            // Blank is not unset: the generated key file would sign the chain instead.
            Raw {
                audit_key: Some(" ".repeat(40)),
                ..raw()
            },
            "DARTTS_AUDIT_KEY",
        ),
    ] {
        let err = Settings::from_raw(raw).unwrap_err();
        assert!(
            err.to_string().contains(setting),
            "{err} should name {setting}"
        );
    }
}

#[test]
fn a_file_key_that_names_no_setting_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("dartts.toml");
    std::fs::write(&file, "lisen = \"0.0.0.0:8080\"\n").unwrap();
    let err = Settings::load(Some(&file)).unwrap_err().to_string();
    assert!(err.contains("lisen"), "{err}");
    std::fs::write(&file, "listen = \"127.0.0.1:8081\"\n").unwrap();
    assert_eq!(
        Settings::load(Some(&file)).unwrap().listen.to_string(),
        "127.0.0.1:8081"
    );
}

#[test]
fn every_setting_is_read_from_the_environment() {
    // `Raw`'s fields are what serde fills; `SETTINGS` is what figment passes through.
    let raw = Raw {
        database_url: Some("sqlite://x".into()),
        redis_url: Some("redis://x".into()),
        listen: Some("127.0.0.1:1".into()),
        instance: Some("foreign".into()),
        data_dir: Some("d".into()),
        graphiql: Some("true".into()),
        introspection: Some("true".into()),
        policy_dir: Some(".".into()),
        oidc_issuer: Some("https://sso.example".into()),
        oidc_audience: Some("dartts".into()),
        oidc_username_claim: Some("sub".into()),
        oidc_client_id: Some("dartts".into()),
        oidc_client_secret: Some("s3cret".into()),
        oidc_redirect_url: Some("https://dartts.example/auth/callback".into()),
        tls_listen: Some("127.0.0.1:8443".into()),
        tls_cert: Some("cert.pem".into()),
        tls_key: Some("key.pem".into()),
        tls_client_ca: Some("ca.pem".into()),
        tls_client_crl: Some("crl.pem".into()),
        login_max_failures: Some("5".into()),
        audit: Some("on".into()),
        retention_years: Some("10".into()),
        sdn_cadence_days: Some("31".into()),
        subjects_cadence_days: Some("92".into()),
        metrics_listen: Some("127.0.0.1:9464".into()),
        request_time_limit: Some("60".into()),
        analysis_concurrency: Some("2".into()),
        audit_key: Some("k".repeat(32)),
    };
    let as_json = format!("{raw:?}");
    for key in SETTINGS {
        assert!(
            as_json.contains(&format!("{key}: Some(")),
            "{key} missing from SETTINGS or Raw"
        );
    }
    assert_eq!(as_json.matches(": Some(").count(), SETTINGS.len());
}

fn oidc(issuer: &str) -> Raw {
    Raw {
        oidc_issuer: Some(issuer.into()),
        oidc_audience: Some("urn:dartts:api".into()),
        ..raw()
    }
}

#[test]
fn oidc_settings_are_all_or_nothing() {
    let s = Settings::from_raw(oidc("https://sso.agency.example/realms/dartts")).unwrap();
    let o = s.oidc.unwrap();
    assert_eq!(o.username_claim, "sub");
    assert!(o.login.is_none());
    let s = Settings::from_raw(Raw {
        oidc_client_id: Some("dartts".into()),
        oidc_client_secret: Some("hunter2".into()),
        oidc_redirect_url: Some("http://127.0.0.1:8080/auth/callback".into()),
        oidc_username_claim: Some("preferred_username".into()),
        ..oidc("http://127.0.0.1:9000")
    })
    .unwrap();
    let o = s.oidc.unwrap();
    assert_eq!(o.username_claim, "preferred_username");
    let login = o.login.unwrap();
    assert_eq!(login.client_secret.as_ref().unwrap().expose(), "hunter2");
    assert!(!format!("{login:?}").contains("hunter2"), "secret in Debug");

    for (raw, setting) in [
        (oidc("http://sso.agency.example"), "DARTTS_OIDC_ISSUER"),
        (oidc("sso.agency.example"), "DARTTS_OIDC_ISSUER"),
        (oidc("https://sso.example/?x=1"), "DARTTS_OIDC_ISSUER"),
        (
            Raw {
                oidc_audience: None,
                ..oidc("https://sso.example")
            },
            "DARTTS_OIDC_AUDIENCE",
        ),
        (
            Raw {
                oidc_audience: Some("dartts".into()),
                ..raw()
            },
            "DARTTS_OIDC_AUDIENCE",
        ),
        (
            Raw {
                oidc_username_claim: Some("a b".into()),
                ..oidc("https://sso.example")
            },
            "DARTTS_OIDC_USERNAME_CLAIM",
        ),
        (
            Raw {
                oidc_client_id: Some("dartts".into()),
                ..oidc("https://sso.example")
            },
            "DARTTS_OIDC_REDIRECT_URL",
        ),
        (
            Raw {
                oidc_client_id: Some("dartts".into()),
                oidc_redirect_url: Some("https://dartts.example/graphql".into()),
                ..oidc("https://sso.example")
            },
            "DARTTS_OIDC_REDIRECT_URL",
        ),
        (
            Raw {
                oidc_client_secret: Some("s".into()),
                ..oidc("https://sso.example")
            },
            "DARTTS_OIDC_CLIENT_SECRET",
        ),
    ] {
        let err = Settings::from_raw(raw).unwrap_err();
        assert!(
            err.to_string().contains(setting),
            "{err} should name {setting}"
        );
    }
}

#[test]
fn tls_settings_are_all_or_nothing_and_files_must_exist() {
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, "pem").unwrap();
        Some(path.display().to_string())
    };
    let complete = || Raw {
        tls_listen: Some("0.0.0.0:8443".into()),
        tls_cert: file("cert.pem"),
        tls_key: file("key.pem"),
        tls_client_ca: file("ca.pem"),
        ..raw()
    };
    let s = Settings::from_raw(complete()).unwrap();
    let tls = s.tls.unwrap();
    assert_eq!(tls.listen.to_string(), "0.0.0.0:8443");
    assert!(tls.client_ca.ends_with("ca.pem"));
    assert_eq!(tls.client_crl, None);
    let with_crl = Settings::from_raw(Raw {
        tls_client_crl: file("crl.pem"),
        ..complete()
    });
    assert!(
        with_crl
            .unwrap()
            .tls
            .unwrap()
            .client_crl
            .unwrap()
            .ends_with("crl.pem")
    );
    assert_eq!(s.login_max_failures, DEFAULT_LOGIN_MAX_FAILURES);
    assert!(Settings::from_raw(raw()).unwrap().tls.is_none());
    let max = Settings::from_raw(Raw {
        login_max_failures: Some("3".into()),
        ..raw()
    })
    .unwrap();
    assert_eq!(max.login_max_failures, 3);

    for (raw, setting) in [
        (
            Raw {
                tls_listen: Some("8443".into()),
                ..complete()
            },
            "DARTTS_TLS_LISTEN",
        ),
        (
            Raw {
                tls_listen: None,
                ..complete()
            },
            "DARTTS_TLS_CERT",
        ),
        (
            Raw {
                tls_key: None,
                ..complete()
            },
            "DARTTS_TLS_KEY",
        ),
        (
            Raw {
                tls_client_ca: Some(dir.path().join("missing.pem").display().to_string()),
                ..complete()
            },
            "DARTTS_TLS_CLIENT_CA",
        ),
        (
            Raw {
                tls_client_crl: Some(dir.path().join("missing.pem").display().to_string()),
                ..complete()
            },
            "DARTTS_TLS_CLIENT_CRL",
        ),
        (
            Raw {
                tls_listen: None,
                tls_cert: None,
                tls_key: None,
                tls_client_ca: None,
                tls_client_crl: file("crl.pem"),
                ..complete()
            },
            "DARTTS_TLS_CLIENT_CRL",
        ),
        (
            Raw {
                login_max_failures: Some("0".into()),
                ..raw()
            },
            "DARTTS_LOGIN_MAX_FAILURES",
        ),
        (
            Raw {
                login_max_failures: Some("many".into()),
                ..raw()
            },
            "DARTTS_LOGIN_MAX_FAILURES",
        ),
    ] {
        let err = Settings::from_raw(raw).unwrap_err();
        assert!(
            err.to_string().contains(setting),
            "{err} should name {setting}"
        );
    }
}

#[test]
fn passwords_are_redacted() {
    let url = SecretUrl("postgres://dartts:hunter2@db:5432/dartts".into());
    assert_eq!(format!("{url:?}"), "postgres://dartts:***@db:5432/dartts");
    assert!(!url.to_string().contains("hunter2"));
    let no_password = SecretUrl("postgres://dartts@db/dartts".into());
    assert_eq!(no_password.redacted(), "postgres://dartts@db/dartts");
}
