use std::collections::BTreeMap;
use std::sync::OnceLock;

use rsa::pkcs1::EncodeRsaPublicKey;
use rsa::pkcs8::DecodePrivateKey;

use super::*;
use crate::uri::{self, Payload};

/// The link privacyIDEA 3.14 wrote for a PUSH token (captured).
const LINK: &str = "otpauth://pipush/PIPU00008DB7?url=http%3A//127.0.0.1%3A5124/ttype/push&ttl=10&issuer=privacyIDEA&enrollment_credential=fbf7ce5700da75da5d6a2b54e658d8d9fa22499e&v=1&serial=PIPU00008DB7&sslverify=0&poll_only=True";

fn link(text: &str) -> Result<Enrollment, Error> {
    match uri::parse(text).unwrap() {
        Payload::PrivacyIdeaPush { label, parameters } => Enrollment::from_link(&label, &parameters),
        other => panic!("not a pipush link: {other:?}"),
    }
}

/// 2048-bit keys, made once: RSA key generation is slow.
fn keys() -> &'static (DeviceKey, DeviceKey) {
    static KEYS: OnceLock<(DeviceKey, DeviceKey)> = OnceLock::new();
    KEYS.get_or_init(|| (DeviceKey::generate_bits(2048).unwrap(), DeviceKey::generate_bits(2048).unwrap()))
}

fn pkcs1(key: &DeviceKey) -> Vec<u8> {
    rsa::RsaPrivateKey::from_pkcs8_der(key.pkcs8()).unwrap().to_public_key().to_pkcs1_der().unwrap().as_bytes().to_vec()
}

/// A token enrolled with `keys().0`, whose server signs with `keys().1`.
fn token() -> Token {
    let (device, server) = keys();
    Token {
        serial: "PIPU0001".into(),
        label: "PIPU0001".into(),
        issuer: "privacyIDEA".into(),
        url: "http://127.0.0.1:5000/ttype/push".into(),
        sslverify: false,
        pin: false,
        key: device.clone(),
        server_key: pkcs1(server),
    }
}

/// A challenge as the server would sign it.
fn challenge(presence: Option<&str>, capabilities: bool) -> RawChallenge {
    let server = &keys().1;
    let nonce = "RFZE26VXQJHUMRQISGHXS6JBFQA4BKOF";
    let url = "http://127.0.0.1:5000/ttype/push";
    let mut text = format!("{nonce}|{url}|PIPU0001|Do you want to confirm the login?|privacyIDEA|0");
    if let Some(options) = presence {
        text = format!("{text}|{options}");
    }
    let capabilities_signature =
        capabilities.then(|| server.sign(&format!(r#"{{"capabilities":{{"decline_reason":true}},"nonce":"{nonce}"}}"#)).unwrap());
    RawChallenge {
        nonce: nonce.into(),
        serial: "PIPU0001".into(),
        question: "Do you want to confirm the login?".into(),
        title: "privacyIDEA".into(),
        sslverify: "0".into(),
        url: url.into(),
        signature: server.sign(&text).unwrap(),
        capabilities: capabilities.then(|| r#"{"decline_reason": true}"#.to_owned()),
        capabilities_signature,
        require_presence: presence.map(str::to_owned),
        version: presence.map(|_| "2".to_owned()),
    }
}

#[test]
fn the_link_privacyidea_writes_is_read_whole() {
    let enrollment = link(LINK).unwrap();
    assert_eq!(
        (enrollment.serial.as_str(), enrollment.label.as_str(), enrollment.issuer.as_str()),
        ("PIPU00008DB7", "PIPU00008DB7", "privacyIDEA")
    );
    assert_eq!(enrollment.url, "http://127.0.0.1:5124/ttype/push");
    assert_eq!((enrollment.ttl_minutes, enrollment.sslverify, enrollment.pin), (10, false, false));
    assert_eq!(enrollment.credential.as_str(), "fbf7ce5700da75da5d6a2b54e658d8d9fa22499e");
    assert!(!format!("{enrollment:?}").contains("fbf7ce57"), "the credential stays out of Debug");
    // The pia:// scheme and a PIN requirement.
    let pia = link(&format!("{}&pin=True", LINK.replace("otpauth://", "pia://"))).unwrap();
    assert!(pia.pin);
}

#[test]
fn links_that_cannot_work_are_refused_with_the_reason() {
    assert_eq!(link(&LINK.replace("&poll_only=True", "")), Err(Error::NotPollOnly));
    assert_eq!(link(&LINK.replace("poll_only=True", "poll_only=False")), Err(Error::NotPollOnly));
    assert_eq!(link(&LINK.replace("&serial=PIPU00008DB7", "")), Err(Error::Missing("serial")));
    assert_eq!(link(&LINK.replace("url=http%3A", "url=ftp%3A")), Err(Error::Invalid("url")));
    assert_eq!(link(&LINK.replace("ttl=10", "ttl=soon")), Err(Error::Invalid("ttl")));
    assert_eq!(link(&LINK.replace("v=1", "v=3")), Err(Error::Invalid("version")));
    assert_eq!(
        link(&LINK.replace("&enrollment_credential=fbf7ce5700da75da5d6a2b54e658d8d9fa22499e", "")),
        Err(Error::Missing("enrollment_credential"))
    );
}

#[test]
fn the_ttl_is_enforced_by_the_app() {
    let enrollment = link(LINK).unwrap();
    assert_eq!(enrollment.check_ttl(1000, 1000 + 600), Ok(()));
    assert_eq!(enrollment.check_ttl(1000, 1000 + 601), Err(Error::Expired(10)));
}

#[test]
fn signatures_are_padded_upper_case_base32_that_verify() {
    let (device, _) = keys();
    let signature = device.sign("PIPU0001|2026-12-03T12:00:00Z").unwrap();
    // 256 bytes: 416 characters, the last 6 of them padding.
    assert_eq!(signature.len(), 416);
    assert!(signature.ends_with("======") && !signature.ends_with("======="));
    assert!(signature.chars().all(|c| c.is_ascii_uppercase() || ('2'..='7').contains(&c) || c == '='));
    assert_eq!(verify(&pkcs1(device), b"PIPU0001|2026-12-03T12:00:00Z", &signature), Ok(()));
    assert_eq!(verify(&pkcs1(device), b"PIPU0001|2026-12-03T12:00:01Z", &signature), Err(Error::Signature));
    assert_eq!(verify(&pkcs1(device), b"PIPU0001|2026-12-03T12:00:00Z", &signature.to_lowercase()), Err(Error::Signature));
    assert_eq!(verify(&pkcs1(device), b"PIPU0001|2026-12-03T12:00:00Z", signature.trim_end_matches('=')), Err(Error::Signature));
}

#[test]
fn the_public_key_is_padded_base64_of_spki_and_the_server_key_pkcs1() {
    use rsa::pkcs8::DecodePublicKey;
    let (device, server) = keys();
    let spki = crate::base64::decode(device.public_key_base64().unwrap()).unwrap();
    let public = rsa::RsaPublicKey::from_public_key_der(&spki).unwrap();
    assert_eq!(public, rsa::RsaPrivateKey::from_pkcs8_der(device.pkcs8()).unwrap().to_public_key());
    // As privacyIDEA sends its key: base64 of PKCS#1 with a break every 64 characters.
    let text = crate::base64::encode(pkcs1(server));
    let wrapped = text.as_bytes().chunks(64).map(|line| std::str::from_utf8(line).unwrap()).collect::<Vec<_>>().join("\n");
    assert_eq!(parse_server_key(&wrapped).unwrap(), pkcs1(server));
    assert_eq!(parse_server_key("not a key"), Err(Error::ServerKey));
    assert_eq!(parse_server_key(&crate::base64::encode(&spki)), Err(Error::ServerKey), "SPKI is not what the server sends");
}

#[test]
fn a_signed_challenge_verifies_and_a_changed_one_is_dropped() {
    let token = token();
    let verified = token.verify(&challenge(None, true)).unwrap();
    assert_eq!(verified.nonce, "RFZE26VXQJHUMRQISGHXS6JBFQA4BKOF");
    assert!(verified.decline_reason && verified.presence_options.is_empty());
    let presence = token.verify(&challenge(Some("R,Y,U"), true)).unwrap();
    assert_eq!(presence.presence_options, ["R", "Y", "U"]);

    let mut changed = challenge(None, true);
    changed.question = "Do you want to confirm the payment?".into();
    assert_eq!(token.verify(&changed), Err(Error::Signature));
    let mut options = challenge(Some("R,Y,U"), true);
    options.require_presence = Some("A,B,C".into());
    assert_eq!(token.verify(&options), Err(Error::Signature));
    let mut url = challenge(None, true);
    url.url = "http://attacker.example/ttype/push".into();
    assert_eq!(token.verify(&url), Err(Error::Signature));
    // A capability the server did not sign drops the challenge ...
    let mut capabilities = challenge(None, true);
    capabilities.capabilities = Some(r#"{"decline_reason": false}"#.into());
    assert_eq!(token.verify(&capabilities), Err(Error::Signature));
    // ... and unsigned capabilities are not believed.
    let mut unsigned = challenge(None, true);
    unsigned.capabilities_signature = None;
    assert!(!token.verify(&unsigned).unwrap().decline_reason);
    // Signed by the server, but for another token of it.
    let mut other = token.clone();
    other.serial = "PIPU0002".into();
    assert_eq!(other.verify(&challenge(None, false)), Err(Error::WrongSerial("PIPU0001".into())));
}

#[test]
fn answers_sign_what_privacyidea_checks() {
    let token = token();
    let device = pkcs1(&keys().0);
    let check = |form: Vec<(&'static str, String)>, text: &str| {
        let fields: BTreeMap<&str, String> = form.into_iter().collect();
        assert_eq!(verify(&device, text.as_bytes(), &fields["signature"]), Ok(()), "{text}");
        fields
    };
    let nonce = "RFZE26VXQJHUMRQISGHXS6JBFQA4BKOF";
    let plain = token.verify(&challenge(None, true)).unwrap();
    let approve = check(token.answer_form(&plain, Decision::Approve, None).unwrap(), &format!("{nonce}|PIPU0001"));
    assert_eq!((approve["serial"].as_str(), approve["nonce"].as_str()), ("PIPU0001", nonce));
    assert!(!approve.contains_key("decline"));
    let deny = check(token.answer_form(&plain, Decision::Deny, None).unwrap(), &format!("{nonce}|PIPU0001|decline|cancelled"));
    assert_eq!((deny["decline"].as_str(), deny["decline_reason"].as_str()), ("1", "cancelled"));
    let report = check(token.answer_form(&plain, Decision::Report, None).unwrap(), &format!("{nonce}|PIPU0001|decline|unknown_trigger"));
    assert_eq!(report["decline_reason"], "unknown_trigger");
    // A server that did not sign the capability gets the plain decline.
    let old = Challenge { decline_reason: false, ..plain.clone() };
    let legacy = check(token.answer_form(&old, Decision::Report, None).unwrap(), &format!("{nonce}|PIPU0001|decline"));
    assert!(!legacy.contains_key("decline_reason"));
    let presence = token.verify(&challenge(Some("R,Y,U"), true)).unwrap();
    let picked = check(token.answer_form(&presence, Decision::Approve, Some("Y")).unwrap(), &format!("{nonce}|PIPU0001|Y"));
    assert_eq!(picked["presence_answer"], "Y");
}

#[test]
fn polls_sign_serial_and_timestamp() {
    let token = token();
    let query: BTreeMap<&str, String> = token.poll_query("2026-12-03T12:00:00Z").unwrap().into_iter().collect();
    assert_eq!((query["serial"].as_str(), query["timestamp"].as_str()), ("PIPU0001", "2026-12-03T12:00:00Z"));
    assert_eq!(verify(&pkcs1(&keys().0), b"PIPU0001|2026-12-03T12:00:00Z", &query["signature"]), Ok(()));
}

#[test]
fn keys_stay_out_of_debug() {
    let token = token();
    let text = format!("{token:?}");
    assert!(text.contains("DeviceKey(<redacted>)"), "{text}");
    // The private key's bytes as Debug would print them (its modulus, past the PKCS#8 header).
    let bytes = format!("{:?}", &token.key.pkcs8()[40..56]);
    let bytes = bytes.trim_start_matches('[').trim_end_matches(']');
    assert!(!text.contains(bytes), "{text}");
    assert!(
        format!("{:?}", token.server_key).contains(format!("{:?}", &token.server_key[..4]).trim_matches(['[', ']'])),
        "the check would see bytes if they were printed"
    );
}

#[test]
fn privacyidea_totp_links_import_like_any_other() {
    // As privacyIDEA 3.14 writes them, with its own creator and serial parameters.
    let text = "otpauth://totp/TOTP0000FBC2?secret=UHQUCWAMTTAZLIHC65NQ27IFZI4M5FVY&algorithm=SHA256&period=30&digits=6&creator=privacyidea&issuer=privacyIDEA&serial=TOTP0000FBC2";
    let Payload::Account { account, .. } = uri::parse(text).unwrap() else { panic!("not an account") };
    assert_eq!((account.issuer.as_str(), account.name.as_str(), account.digits), ("privacyIDEA", "TOTP0000FBC2", 6));
    assert_eq!(account.algorithm, crate::account::Algorithm::Sha256);
    assert_eq!(account.method, crate::account::Method::Totp { period: 30 });
    let hotp = uri::parse("otpauth://hotp/OATH0001?secret=UHQUCWAMTTAZLIHC65NQ27IFZI4M5FVY&counter=1&digits=8&creator=privacyidea&issuer=privacyIDEA&serial=OATH0001").unwrap();
    let Payload::Account { account, .. } = hotp else { panic!("not an account") };
    assert_eq!((account.method, account.digits), (crate::account::Method::Hotp { counter: 1 }, 8));
}

/// A poll is dated, and the server's clock measured, by the clock the
/// caller gives: here a fixed one, half a minute behind the server's `Date`.
#[cfg(feature = "client")]
#[test]
fn a_poll_reads_the_time_from_the_clock_it_is_given() {
    use std::io::{Read, Write};
    fn fixed() -> jiff::Timestamp {
        "2026-12-03T12:00:00Z".parse().unwrap()
    }
    let server = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut token = token();
    token.url = format!("http://127.0.0.1:{}/ttype/push", server.local_addr().unwrap().port());
    let answering = std::thread::spawn(move || {
        let (mut stream, _) = server.accept().unwrap();
        let mut request = [0; 4096];
        let read = stream.read(&mut request).unwrap();
        let body = r#"{"result":{"status":true,"value":[]}}"#;
        let answer = format!(
            "HTTP/1.1 200 OK\r\nDate: Thu, 03 Dec 2026 12:00:30 GMT\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(answer.as_bytes()).unwrap();
        String::from_utf8_lossy(&request[..read]).into_owned()
    });
    crate::push::client::install_crypto();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let polled = runtime.block_on(client::poll(&reqwest::Client::new(), &token, fixed)).unwrap();
    let request = answering.join().unwrap();
    assert!(request.contains("timestamp=2026-12-03T12%3A00%3A00Z"), "{request}");
    assert_eq!(polled.clock_offset, Some(30));
}
