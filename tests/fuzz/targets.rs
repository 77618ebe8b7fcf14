//! The fuzz targets' bodies, shared by the libFuzzer binaries (tests/fuzz,
//! nightly) and the corpus replay test (tests/fuzz_corpus.rs, stable): one
//! copy of each. Every body takes arbitrary bytes and must never panic.
//!
//! Everything goes through the `countersign` library's public API. Where a
//! checksum or a signature would stop the fuzzer at the door, the harness
//! supplies it (a vault file's trailing SHA-256, an envelope's Ed25519
//! signature, a privacyIDEA challenge's RSA signature), so the code behind
//! the check is fuzzed too. Key derivations are only run for inputs that ask
//! for small costs: the large ones are bounded in src/ and only cost time.

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::Duration;

use countersign::base64;
use countersign::push::{self, protocol};
use countersign::secret::Password;
use countersign::{migration, otp, privacyidea, scan, transfer, uri, vault};
use sha2::Digest as _;

/// Every target, by name (its corpus is tests/fuzz/corpus/NAME).
/// A target's body: any bytes in, no panic.
pub type Target = fn(&[u8]);

pub const TARGETS: &[(&str, Target)] = &[
    ("uri", uri),
    ("migration", migration),
    ("transfer", transfer),
    ("vault", vault),
    ("push", push),
    ("privacyidea_link", privacyidea_link),
    ("privacyidea_challenge", privacyidea_challenge),
    ("scan_image", scan_image),
    ("scan_pixels", scan_pixels),
];

/// A fixed instant (2026-12-01T00:00:00Z): time is a parameter.
const NOW: i64 = 1_796_083_200;

/// Codes of a parsed account, when it is valid (what `otp::code` requires).
fn codes(account: &countersign::account::Account) {
    if account.validate().is_ok() {
        let code = otp::code(account, NOW as u64);
        let _ = code.grouped();
        let _ = code.seconds_left(NOW as u64);
        let _ = otp::code(account, u64::MAX);
    }
}

/// `otpauth://`, `otpauth-migration://`, `phonefactor://`, activation links:
/// `uri::parse`, and for accounts `uri::format` must read back equal.
pub fn uri(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(payload) = uri::parse(text) else { return };
    let _ = payload.describe();
    if let uri::Payload::Account { account, warnings } = payload {
        for warning in &warnings {
            let _ = warning.to_string();
        }
        codes(&account);
        let written = uri::format(&account);
        match uri::parse(&written) {
            Ok(uri::Payload::Account { account: again, .. }) => {
                assert_eq!(again, account, "uri::format then uri::parse changed the account: {written}");
            }
            other => panic!("uri::format wrote {written:?}, which parses as {other:?}"),
        }
    }
}

/// Google Authenticator exports: the `data` parameter as text, and the raw
/// bytes as the protobuf itself (base64-encoded here), collected in `Batches`.
pub fn migration(data: &[u8]) {
    let mut batches = migration::Batches::default();
    let mut decoded = Vec::new();
    if let Ok(text) = std::str::from_utf8(data) {
        decoded.push(migration::decode(text));
    }
    decoded.push(migration::decode(&base64::encode(data)));
    for export in decoded.into_iter().flatten() {
        let accounts: Vec<_> = export.entries.iter().filter_map(|entry| entry.account.as_ref().ok()).cloned().collect();
        for account in &accounts {
            codes(account);
        }
        let batch = export.batch;
        let _ = batches.add(export);
        // What Google can hold goes out and comes back as many accounts.
        let (link, left_out) = migration::encode(&accounts, batch);
        if accounts.len() > left_out.len() {
            match uri::parse(&link) {
                Ok(uri::Payload::GoogleExport { data }) => {
                    let again =
                        migration::decode(&data).unwrap_or_else(|e| panic!("migration::encode wrote {link:?}, which does not decode: {e}"));
                    assert_eq!(again.entries.len(), accounts.len() - left_out.len());
                }
                other => panic!("migration::encode wrote {link:?}, which parses as {other:?}"),
            }
        }
    }
    for progress in batches.all_progress() {
        let _ = (progress.to_string(), progress.is_complete());
    }
    for missing in batches.missing() {
        let _ = (missing.to_string(), missing.count());
    }
    let _ = (batches.is_complete(), batches.entries().count());
}

/// Whether the numbers in a JSON document (scrypt's n, r, p) are small
/// enough for a key derivation to be cheap.
fn json_costs_small(bytes: &[u8]) -> bool {
    fn small(value: &serde_json::Value) -> bool {
        match value {
            serde_json::Value::Number(n) => n.as_f64().is_some_and(|n| n.abs() <= 256.0),
            serde_json::Value::Array(items) => items.iter().all(small),
            serde_json::Value::Object(fields) => fields.values().all(small),
            _ => true,
        }
    }
    match serde_json::from_slice::<serde_json::Value>(bytes) {
        Ok(json) => small(&json),
        // andOTP's binary layout starts with its PBKDF2 iteration count.
        Err(_) => bytes.get(..4).is_some_and(|count| u32::from_be_bytes([count[0], count[1], count[2], count[3]]) <= 20_000),
    }
}

/// Every import format, detected and forced; with a password when the file
/// asks for cheap key derivations (vault files are the `vault` target's).
pub fn transfer(data: &[u8]) {
    let _ = transfer::detect(data);
    let password = Password::new("not the password".into());
    let cheap = json_costs_small(data) && !data.starts_with(vault::MAGIC);
    let formats = std::iter::once(None).chain(transfer::Format::ALL.into_iter().map(Some));
    for format in formats {
        if let Ok(contents) = transfer::read(data, format, None) {
            for item in &contents.items {
                if let Ok(account) = &item.account {
                    codes(account);
                }
            }
            let _ = transfer::preview(&contents, &[]);
        }
        if cheap && format != Some(transfer::Format::Countersign) {
            let _ = transfer::read(data, format, Some(&password));
        }
    }
}

/// Whether every password slot of a vault file's header asks for a cheap
/// Argon2id (the fixtures use 1 MiB and 1 pass).
fn vault_costs_small(bytes: &[u8]) -> bool {
    let Some(length) = bytes.get(10..14) else { return false };
    let length = u32::from_be_bytes([length[0], length[1], length[2], length[3]]) as usize;
    let Some(header) = bytes.get(14..14usize.saturating_add(length)) else { return false };
    let Ok(header) = serde_json::from_slice::<serde_json::Value>(header) else { return false };
    let Some(slots) = header.get("slots").and_then(serde_json::Value::as_array) else { return false };
    slots.iter().filter_map(|slot| slot.get("kdf")).all(|kdf| {
        let field = |name: &str| kdf.get(name).and_then(serde_json::Value::as_u64);
        field("memory_kib").is_some_and(|m| m <= 2048) && field("passes").is_some_and(|p| p <= 2) && field("lanes").is_some_and(|l| l <= 4)
    })
}

/// A per-thread scratch file for `Locked::read`.
fn scratch_path() -> std::path::PathBuf {
    let thread = format!("{:?}", std::thread::current().id()).replace(|c: char| !c.is_ascii_alphanumeric(), "");
    std::env::temp_dir().join(format!("countersign-fuzz-{}-{thread}.cvault", std::process::id()))
}

/// The vault file reader: the bytes as they are, and with the trailing
/// SHA-256 the fuzzer cannot compute, through `copy_has_password`,
/// `open_copy` and `Locked::read` (a temp file), always with a wrong password.
pub fn vault(data: &[u8]) {
    let mut fixed = data.to_vec();
    fixed.extend_from_slice(&sha2::Sha256::digest(data));
    let password = Password::new("not the password".into());
    let path = scratch_path();
    for bytes in [data, &fixed[..]] {
        let _ = vault::copy_has_password(bytes);
        let cheap = vault_costs_small(bytes);
        if cheap {
            assert!(vault::open_copy(bytes, &password).is_err(), "a vault opened with a wrong password");
            let _ = transfer::read(bytes, Some(transfer::Format::Countersign), Some(&password));
        }
        if std::fs::write(&path, bytes).is_ok()
            && let Ok(locked) = vault::Locked::read(&path)
        {
            let _ = (locked.has_password(), locked.has_keyring(), locked.path());
            if cheap {
                assert!(locked.unlock_with_password(&password).is_err(), "a vault unlocked with a wrong password");
            }
        }
    }
    let _ = std::fs::remove_file(&path);
}

/// The fixed keys push envelopes are signed and checked with.
fn push_keys() -> &'static (protocol::Keypair, protocol::Keypair) {
    static KEYS: OnceLock<(protocol::Keypair, protocol::Keypair)> = OnceLock::new();
    KEYS.get_or_init(|| (protocol::Keypair::from_seed(&[7; 32]).unwrap(), protocol::Keypair::from_seed(&[9; 32]).unwrap()))
}

/// The envelope as sent, and the same payload signed by `key` under `context`.
fn envelopes(envelope: &push::Envelope, key: &protocol::Keypair, context: &[u8]) -> [push::Envelope; 2] {
    let payload = base64::decode(&envelope.payload).unwrap_or_else(|_| envelope.payload.as_bytes().to_vec());
    let signed = push::Envelope { payload: base64::encode(&payload), signature: base64::encode(key.sign(context, &payload)) };
    [envelope.clone(), signed]
}

fn challenge_times(challenge: &push::Challenge) {
    let _ = challenge.seconds_left(NOW);
    let _ = challenge.deadline(NOW, None);
    let _ = challenge.deadline(NOW, Some(-3600));
    let _ = challenge.deadline(NOW, Some(3600));
    for text in [&challenge.app, &challenge.user, &challenge.location, &challenge.question, &challenge.organization] {
        let _ = push::printable(text);
    }
}

/// The push wire protocol: every message type from JSON, envelopes opened
/// with fixed keys (as sent, and re-signed so the payload is read), auth and
/// listen signatures checked.
pub fn push(data: &[u8]) {
    let (server, device) = push_keys();
    let (server_public, device_public) = (server.public(), device.public());
    let _ = serde_json::from_slice::<push::ActivationRequest>(data);
    let _ = serde_json::from_slice::<push::ActivationResponse>(data);
    let _ = serde_json::from_slice::<push::ApiError>(data);
    let _ = serde_json::from_slice::<protocol::ListenerRegistration>(data);
    let _ = serde_json::from_slice::<push::Response>(data);
    if let Ok(challenge) = serde_json::from_slice::<push::Challenge>(data) {
        challenge_times(&challenge);
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = push::PublicKey::from_base64(text);
        let _ = push::printable(text);
    }
    match serde_json::from_slice::<push::ServerMessage>(data) {
        Ok(push::ServerMessage::Hello { nonce, .. }) => {
            let signature = protocol::auth(device, "dev", &nonce);
            if let push::ClientMessage::Auth { signature, .. } = signature {
                assert!(protocol::check_auth(&device_public, &nonce, &signature).is_ok());
            }
        }
        Ok(push::ServerMessage::Challenge { envelope }) => {
            for envelope in envelopes(&envelope, server, protocol::CHALLENGE_CONTEXT) {
                if let Ok(challenge) = protocol::open_challenge(&envelope, &server_public, "dev_fedcba9876543210") {
                    challenge_times(&challenge);
                }
                let _ = envelope.open::<push::Challenge>(&device_public, protocol::CHALLENGE_CONTEXT);
            }
        }
        Ok(push::ServerMessage::Text { envelope }) => {
            for envelope in envelopes(&envelope, server, protocol::TEXT_CONTEXT) {
                let _ = protocol::open_text(&envelope, &server_public, "dev_fedcba9876543210");
                let _ = protocol::open_call(&envelope, &server_public, "dev_fedcba9876543210");
            }
        }
        Ok(push::ServerMessage::Call { envelope }) => {
            for envelope in envelopes(&envelope, server, protocol::CALL_CONTEXT) {
                let _ = protocol::open_call(&envelope, &server_public, "dev_fedcba9876543210");
            }
        }
        _ => {}
    }
    match serde_json::from_slice::<push::ClientMessage>(data) {
        Ok(push::ClientMessage::Auth { device_id, signature }) => {
            let _ = protocol::check_auth(&device_public, &device_id, &signature);
        }
        Ok(push::ClientMessage::Listen { device_id, signature }) => {
            let _ = protocol::check_listen(&device_public, &device_id, &server_public, &signature);
        }
        Ok(push::ClientMessage::Respond { envelope }) => {
            for envelope in envelopes(&envelope, device, protocol::RESPONSE_CONTEXT) {
                let _ = envelope.open::<push::Response>(&device_public, protocol::RESPONSE_CONTEXT);
            }
        }
        Ok(push::ClientMessage::RegisterListener { envelope }) => {
            for envelope in envelopes(&envelope, device, protocol::LISTENER_CONTEXT) {
                let _ = envelope.open::<protocol::ListenerRegistration>(&device_public, protocol::LISTENER_CONTEXT);
            }
        }
        Ok(push::ClientMessage::Phone { envelope }) => {
            for envelope in envelopes(&envelope, device, protocol::PHONE_CONTEXT) {
                if let Ok(request) = envelope.open::<push::PhoneRequest>(&device_public, protocol::PHONE_CONTEXT) {
                    let text = match request.action {
                        push::PhoneAction::Attach { number } | push::PhoneAction::Detach { number } => number,
                        push::PhoneAction::Reply { text, .. } => text,
                        push::PhoneAction::Keys { keys, .. } => keys,
                    };
                    let _ = push::printable(&text);
                }
            }
        }
        Err(_) => {}
    }
}

/// The privacyIDEA enrollment link: through `uri::parse`, and the bytes as a
/// query string straight into `Enrollment::from_link`; and the server key.
pub fn privacyidea_link(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let mut links = Vec::new();
    if let Ok(uri::Payload::PrivacyIdeaPush { label, parameters }) = uri::parse(text) {
        links.push((label, parameters));
    }
    let (label, query) = text.split_once('?').unwrap_or(("", text));
    let parameters: BTreeMap<String, String> = form_urlencoded::parse(query.as_bytes()).into_owned().collect();
    links.push((label.to_owned(), parameters));
    for (label, parameters) in links {
        if let Ok(enrollment) = privacyidea::Enrollment::from_link(&label, &parameters) {
            let _ = format!("{enrollment:?}");
            let _ = enrollment.check_ttl(NOW, NOW);
            let _ = enrollment.check_ttl(NOW, i64::MAX);
            let _ = enrollment.check_ttl(i64::MIN, NOW);
        }
    }
    let _ = privacyidea::parse_server_key(text);
}

/// A token with fixed 2048-bit keys (made once per process), and the
/// server's key that signs the challenges the harness re-signs.
fn privacyidea_keys() -> &'static (privacyidea::Token, privacyidea::DeviceKey) {
    static KEYS: OnceLock<(privacyidea::Token, privacyidea::DeviceKey)> = OnceLock::new();
    KEYS.get_or_init(|| {
        use rsa::pkcs1::EncodeRsaPublicKey as _;
        use rsa::pkcs8::DecodePrivateKey as _;
        let device = privacyidea::DeviceKey::generate_bits(2048).unwrap();
        let server = privacyidea::DeviceKey::generate_bits(2048).unwrap();
        let server_key =
            rsa::RsaPrivateKey::from_pkcs8_der(server.pkcs8()).unwrap().to_public_key().to_pkcs1_der().unwrap().as_bytes().to_vec();
        let token = privacyidea::Token {
            serial: "PIPU0001".into(),
            label: "PIPU0001".into(),
            issuer: "privacyIDEA".into(),
            url: "https://127.0.0.1/ttype/push".into(),
            sslverify: false,
            pin: false,
            key: device,
            server_key,
        };
        (token, server)
    })
}

/// A poll's challenges (one object or a list) from JSON, verified as sent
/// and re-signed by the server's key (the text of src/privacyidea.rs's
/// protocol notes), then answered every way.
pub fn privacyidea_challenge(data: &[u8]) {
    let (token, server) = privacyidea_keys();
    let raws = match serde_json::from_slice::<Vec<privacyidea::RawChallenge>>(data) {
        Ok(raws) => raws,
        Err(_) => match serde_json::from_slice::<privacyidea::RawChallenge>(data) {
            Ok(raw) => vec![raw],
            Err(_) => return,
        },
    };
    for raw in raws.into_iter().take(4) {
        let _ = token.verify(&raw);
        let mut signed = raw.clone();
        let mut text = format!("{}|{}|{}|{}|{}|{}", raw.nonce, raw.url, raw.serial, raw.question, raw.title, raw.sslverify);
        if let Some(options) = &raw.require_presence {
            text.push('|');
            text.push_str(options);
        }
        let Ok(signature) = server.sign(&text) else { continue };
        signed.signature = signature;
        if let Some(capabilities) = &raw.capabilities
            && let Ok(parsed) = serde_json::from_str::<serde_json::Value>(capabilities)
            && let Ok(canonical) = serde_jcs::to_vec(&serde_json::json!({ "capabilities": parsed, "nonce": raw.nonce }))
            && let Ok(canonical) = String::from_utf8(canonical)
            && let Ok(signature) = server.sign(&canonical)
        {
            signed.capabilities_signature = Some(signature);
        }
        let Ok(challenge) = token.verify(&signed) else { continue };
        let presence = challenge.presence_options.first().cloned();
        for decision in [push::Decision::Approve, push::Decision::Deny, push::Decision::Report] {
            let _ = token.answer_form(&challenge, decision, presence.as_deref());
        }
        let _ = push::printable(&challenge.question);
    }
}

/// Search budget per image: the app's is 350 ms; the fuzzer wants many
/// small images rather than a few thorough searches.
const SCAN_BUDGET: Duration = Duration::from_millis(50);

/// The QR loader on arbitrary encoded bytes (PNG, JPEG, WebP, BMP, GIF),
/// then the search on what it decoded.
pub fn scan_image(data: &[u8]) {
    if let Ok(image) = scan::load(data) {
        let found = scan::find(&image, SCAN_BUDGET);
        for payload in &found.payloads {
            let _ = uri::parse(payload);
        }
    }
}

/// The search itself on arbitrary grey pixels: the first byte picks the
/// width (1 to 256), the rest are the pixels, row by row.
pub fn scan_pixels(data: &[u8]) {
    let Some((&width, pixels)) = data.split_first() else { return };
    let width = u32::from(width) + 1;
    let height = pixels.len() as u32 / width;
    if height == 0 {
        return;
    }
    let pixels = pixels[..(width * height) as usize].to_vec();
    if let Some(image) = image::GrayImage::from_raw(width, height, pixels) {
        let found = scan::find(&image, SCAN_BUDGET);
        for payload in &found.payloads {
            let _ = uri::parse(payload);
        }
    }
}
