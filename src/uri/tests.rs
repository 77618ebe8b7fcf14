use proptest::prelude::*;

use super::*;

fn account_of(text: &str) -> (Account, Vec<Warning>) {
    match parse(text) {
        Ok(Payload::Account { account, warnings }) => (account, warnings),
        other => panic!("{text}: {other:?}"),
    }
}

#[test]
fn reads_googles_example() {
    let (account, warnings) = account_of("otpauth://totp/Example:alice@google.com?secret=JBSWY3DPEHPK3PXP&issuer=Example");
    assert_eq!(account.issuer, "Example");
    assert_eq!(account.name, "alice@google.com");
    assert_eq!(account.label_issuer, None);
    assert_eq!(account.method, Method::Totp { period: 30 });
    assert_eq!((account.algorithm, account.digits), (Algorithm::Sha1, 6));
    assert_eq!(account.secret.to_base32().as_str(), "JBSWY3DPEHPK3PXP");
    assert!(warnings.is_empty(), "{warnings:?}");
}

#[test]
fn label_is_decoded_before_splitting_and_spaces_after_colon_skipped() {
    let (account, _) = account_of("otpauth://totp/ACME%20Co%3A%20%20john.doe@email.com?secret=JBSWY3DPEHPK3PXP");
    assert_eq!(account.issuer, "ACME Co");
    assert_eq!(account.name, "john.doe@email.com");
    let (account, _) = account_of("otpauth://totp/Big Corp:  bob?secret=JBSWY3DPEHPK3PXP");
    assert_eq!((account.issuer.as_str(), account.name.as_str()), ("Big Corp", "bob"));
}

#[test]
fn hash_and_non_ascii_names() {
    let (account, _) = account_of("otpauth://totp/Bank%20%231:J%C3%BCrgen#2?secret=JBSWY3DPEHPK3PXP&issuer=Bank%20%231");
    assert_eq!(account.issuer, "Bank #1");
    assert_eq!(account.name, "Jürgen#2");
    let (account, _) = account_of("otpauth://totp/Почта:иван?secret=JBSWY3DPEHPK3PXP");
    assert_eq!((account.issuer.as_str(), account.name.as_str()), ("Почта", "иван"));
}

#[test]
fn issuer_parameter_wins_and_mismatch_is_kept() {
    let (account, warnings) = account_of("otpauth://totp/Old:bob?secret=JBSWY3DPEHPK3PXP&issuer=New");
    assert_eq!(account.issuer, "New");
    assert_eq!(account.label_issuer.as_deref(), Some("Old"));
    assert_eq!(warnings, vec![Warning::IssuerMismatch { parameter: "New".into(), label: "Old".into() }]);
    let (again, _) = account_of(&format(&account));
    assert_eq!(again, account);
}

#[test]
fn an_issuer_with_a_colon_is_kept_as_every_importer_keeps_it() {
    // Written whole in the label too: the separator is the ':' after it.
    let (account, warnings) = account_of("otpauth://totp/ACME%3A%20Staging:alice?secret=JBSWY3DPEHPK3PXP&issuer=ACME%3A%20Staging");
    assert_eq!((account.issuer.as_str(), account.name.as_str(), account.label_issuer.as_deref()), ("ACME  Staging", "alice", None));
    assert_eq!(account.issuer, account::storable_issuer("ACME: Staging"));
    assert_eq!(warnings, [Warning::IssuerColon { original: "ACME: Staging".into() }]);
    assert_eq!(account_of(&format(&account)).0, account);
    // Only in the parameter, or with a label issuer of its own.
    let (account, _) = account_of("otpauth://totp/alice?secret=JBSWY3DPEHPK3PXP&issuer=ACME%3A%20Staging");
    assert_eq!((account.issuer.as_str(), account.name.as_str()), ("ACME  Staging", "alice"));
    let (account, warnings) = account_of("otpauth://totp/ACME:alice?secret=JBSWY3DPEHPK3PXP&issuer=ACME%3AStaging%3A");
    assert_eq!((account.issuer.as_str(), account.name.as_str(), account.label_issuer.as_deref()), ("ACME Staging", "alice", Some("ACME")));
    assert!(warnings.contains(&Warning::IssuerColon { original: "ACME:Staging:".into() }), "{warnings:?}");
    assert_eq!(account_of(&format(&account)).0, account);
}

#[test]
fn secrets_in_any_case_spacing_and_padding() {
    let (account, warnings) = account_of("otpauth://totp/a?secret=jbsw%20y3dp-ehpk-3pxp%3D%3D");
    assert_eq!(account.secret.to_base32().as_str(), "JBSWY3DPEHPK3PXP");
    assert!(warnings.contains(&Warning::SecretNormalized));
    assert!(warnings.contains(&Warning::PaddingFixed));
}

#[test]
fn hotp_steam_and_parameters() {
    let (account, warnings) = account_of("otpauth://hotp/X:y?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&counter=7&digits=8&algorithm=sha256");
    assert_eq!(account.method, Method::Hotp { counter: 7 });
    assert_eq!((account.algorithm, account.digits), (Algorithm::Sha256, 8));
    assert_eq!(warnings.len(), 2, "{warnings:?}");

    for steam in [
        "otpauth://steam/Steam:gabe?secret=JBSWY3DPEHPK3PXP",
        "otpauth://totp/Steam:gabe?secret=JBSWY3DPEHPK3PXP&encoder=steam",
        "otpauth://totp/gabe?secret=JBSWY3DPEHPK3PXP&issuer=Steam",
        "otpauth://totp/Steam:gabe?secret=JBSWY3DPEHPK3PXP&digits=5",
    ] {
        let (account, _) = account_of(steam);
        assert_eq!(account.method, Method::Steam, "{steam}");
        assert_eq!(account.digits, 5);
    }
    // A six-digit TOTP from an issuer called Steam stays TOTP.
    let (account, _) = account_of("otpauth://totp/Steam:gabe?secret=JBSWY3DPEHPK3PXP&digits=6");
    assert_eq!(account.method, Method::Totp { period: 30 });
}

#[test]
fn unknown_parameters_are_ignored() {
    let (account, _) = account_of("otpauth://totp/a?secret=JBSWY3DPEHPK3PXP&image=https%3A%2F%2Fx%2Fy.png&color=red");
    assert_eq!(account.name, "a");
}

#[test]
fn errors_name_the_parameter() {
    let cases = [
        ("otpauth://hotp/a?secret=JBSWY3DPEHPK3PXP", Error::Missing("counter")),
        ("otpauth://totp/a", Error::Missing("secret")),
        ("otpauth://totp/a?secret=", Error::Secret(secret::Error::Empty)),
        ("otpauth://totp/a?secret=JBSW1", Error::Secret(secret::Error::NotBase32)),
        ("otpauth://totp/a?secret=JBSWY3DPEHPK3PXP&digits=9", Error::Digits("9".into())),
        ("otpauth://totp/a?secret=JBSWY3DPEHPK3PXP&digits=x", Error::Digits("x".into())),
        ("otpauth://totp/a?secret=JBSWY3DPEHPK3PXP&period=0", Error::Period("0".into())),
        ("otpauth://totp/a?secret=JBSWY3DPEHPK3PXP&algorithm=MD5", Error::Algorithm("MD5".into())),
        ("otpauth://hotp/a?secret=JBSWY3DPEHPK3PXP&counter=-1", Error::Counter("-1".into())),
        ("otpauth://motp/a?secret=JBSWY3DPEHPK3PXP", Error::UnknownType("motp".into())),
        ("http://example.com", Error::UnknownScheme),
        ("JBSWY3DPEHPK3PXP", Error::UnknownScheme),
    ];
    for (text, want) in cases {
        assert_eq!(parse(text), Err(want.clone()), "{text}");
        let message = want.to_string();
        if let Error::Missing(name) = want {
            assert!(message.contains(name));
        }
    }
    assert!(Error::Digits("9".into()).to_string().contains("digits"));
    assert!(Error::Period("0".into()).to_string().contains("period"));
    assert!(Error::Algorithm("MD5".into()).to_string().contains("algorithm"));
}

#[test]
fn other_payloads_are_typed() {
    assert_eq!(
        parse("otpauth-migration://offline?data=CjEKCkhlbGxvId6tvu8SGEV4YW1wbGU%3D"),
        Ok(Payload::GoogleExport { data: "CjEKCkhlbGxvId6tvu8SGEV4YW1wbGU=".into() })
    );
    let activation = Payload::WorkActivation {
        code: "123456789".into(),
        url: "https://mobileappcommunicator.auth.microsoft.com/mac/MobileAppCommunicator.svc/123".into(),
    };
    assert_eq!(
        parse(
            "phonefactor://activate_account?code=123456789&url=https%3A%2F%2Fmobileappcommunicator.auth.microsoft.com%2Fmac%2FMobileAppCommunicator.svc%2F123"
        ),
        Ok(activation.clone())
    );
    assert_eq!(
        parse(
            "https://login.microsoftonline.com/authenticatorApp/activateAccount?code=123456789&url=https%3A%2F%2Fmobileappcommunicator.auth.microsoft.com%2Fmac%2FMobileAppCommunicator.svc%2F123"
        ),
        Ok(activation.clone())
    );
    // An organisation's own server uses the same path on its own host; other
    // https links are not enrollment payloads.
    assert_eq!(
        parse(
            "https://mfa.example.test/countersign/authenticatorApp/activateAccount/?code=123456789&url=https%3A%2F%2Fmobileappcommunicator.auth.microsoft.com%2Fmac%2FMobileAppCommunicator.svc%2F123"
        ),
        Ok(activation)
    );
    assert_eq!(parse("https://example.test/activateAccount?code=1&url=u"), Err(Error::UnknownScheme));
    assert_eq!(parse("https://example.test/xauthenticatorApp/activateAccount?code=1&url=u"), Err(Error::UnknownScheme));
    match parse(
        "otpauth://pipush/PIPU0001?url=https://pi.example/ttype/push&ttl=10&issuer=privacyIDEA&enrollment_credential=abc&v=1&serial=PIPU0001&sslverify=0",
    ) {
        Ok(Payload::PrivacyIdeaPush { label, parameters }) => {
            assert_eq!(label, "PIPU0001");
            assert_eq!(parameters["url"], "https://pi.example/ttype/push");
            assert_eq!(parameters["serial"], "PIPU0001");
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(parse("pia://pipush/X?serial=X"), Ok(Payload::PrivacyIdeaPush { .. })));
}

#[test]
fn format_is_canonical() {
    let (account, _) = account_of("otpauth://totp/ACME%20Co:john?secret=jbswy3dpehpk3pxp&issuer=ACME+Co");
    assert_eq!(
        format(&account),
        "otpauth://totp/ACME%20Co:john?secret=JBSWY3DPEHPK3PXP&issuer=ACME%20Co&algorithm=SHA1&digits=6&period=30"
    );
}

fn arb_text() -> impl Strategy<Value = String> {
    // Names as people type them: any Unicode, trimmed, spaces inside allowed.
    "[a-zA-Z0-9 @.#%&+=?/:ÄéЖ漢-]{0,12}".prop_map(|s| s.trim().to_owned())
}

fn arb_account() -> impl Strategy<Value = Account> {
    (
        arb_text(),
        arb_text(),
        proptest::option::of(arb_text()),
        proptest::collection::vec(any::<u8>(), 1..40),
        0..3u8,
        prop_oneof![Just(Algorithm::Sha1), Just(Algorithm::Sha256), Just(Algorithm::Sha512)],
        6..=8u8,
        1..=86_400u64,
        any::<u64>(),
    )
        .prop_map(|(issuer, name, label_issuer, secret, kind, algorithm, digits, period, counter)| {
            let issuer = issuer.replace(':', "").trim().to_owned();
            let label_issuer =
                label_issuer.map(|l| l.replace(':', "").trim().to_owned()).filter(|l| !issuer.is_empty() && !l.is_empty() && *l != issuer);
            let (method, algorithm, digits) = match kind {
                0 => (Method::Totp { period }, algorithm, digits),
                1 => (Method::Hotp { counter }, algorithm, digits),
                _ => (Method::Steam, Algorithm::Sha1, 5),
            };
            Account { issuer, name, label_issuer, secret: Secret::from_bytes(secret), method, algorithm, digits }
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn parse_format_round_trip(account in arb_account()) {
        let uri = format(&account);
        match parse(&uri) {
            Ok(Payload::Account { account: parsed, .. }) => prop_assert_eq!(parsed, account, "{}", uri),
            other => prop_assert!(false, "{} -> {:?}", uri, other),
        }
    }

    #[test]
    fn never_panics_on_any_string(text in ".{0,200}") {
        let _ = parse(&text);
    }

    #[test]
    fn never_panics_on_uri_shaped_strings(
        scheme in prop_oneof![Just("otpauth"), Just("OTPAUTH"), Just("otpauth-migration"), Just("phonefactor"), Just("pia"), Just("https")],
        kind in prop_oneof![Just("totp"), Just("hotp"), Just("steam"), Just("pipush"), Just(""), Just("login.microsoftonline.com")],
        rest in "[a-zA-Z0-9%:/?&=#+ .-]{0,80}",
    ) {
        let _ = parse(&format!("{scheme}://{kind}/{rest}"));
    }
}
