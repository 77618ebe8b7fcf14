//! Golden JSON of every message (tests/fixtures/push/), made with fixed keys:
//! Ed25519 signatures are deterministic, so the files never change unless
//! the protocol does. `UPDATE_GOLDEN=1 cargo test --lib push` rewrites them.

use std::path::PathBuf;

use super::*;

fn server_key() -> Keypair {
    Keypair::from_seed(&[7; 32]).unwrap()
}

fn device_key() -> Keypair {
    Keypair::from_seed(&[9; 32]).unwrap()
}

/// The device's receive-only key.
fn listener_key() -> Keypair {
    Keypair::from_seed(&[11; 32]).unwrap()
}

fn registration() -> ListenerRegistration {
    ListenerRegistration { v: VERSION, device_id: "dev_fedcba9876543210".into(), listener_key: listener_key().public(), at: 1_796_290_010 }
}

fn challenge() -> Challenge {
    Challenge {
        v: VERSION,
        id: "si_0123456789abcdef".into(),
        device_id: "dev_fedcba9876543210".into(),
        organization: "Contoso".into(),
        user: "alice".into(),
        app: "Contoso VPN".into(),
        ip: "203.0.113.7".into(),
        location: "Zurich, Switzerland".into(),
        created_at: 1_796_290_000,
        expires_at: 1_796_290_060,
        number_matching: true,
        pin_required: false,
        question: String::new(),
        presence_options: Vec::new(),
    }
}

fn activation_response(listener: bool) -> ActivationResponse {
    ActivationResponse {
        organization: "Contoso".into(),
        user: "alice".into(),
        device_id: "dev_fedcba9876543210".into(),
        server_public_key: server_key().public(),
        totp_secret: "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ".into(),
        totp_digits: 6,
        totp_period: 30,
        push_endpoint: "ws://127.0.0.1:8750/api/push".into(),
        listener,
    }
}

fn response() -> Response {
    Response {
        v: VERSION,
        challenge_id: "si_0123456789abcdef".into(),
        device_id: "dev_fedcba9876543210".into(),
        decision: Decision::Approve,
        number: Some(42),
        user_verified: false,
        at: 1_796_290_010,
    }
}

fn text() -> PhoneText {
    PhoneText {
        v: VERSION,
        id: "si_0123456789abcdef".into(),
        device_id: "dev_fedcba9876543210".into(),
        to: "+41446681800".into(),
        sealed: SEALED_TEXT.into(),
        created_at: 1_796_290_000,
        expires_at: 1_796_290_300,
    }
}

/// [`text_body`] sealed to [`device_key`] once (a sealed box is random).
const SEALED_TEXT: &str = "5SsDb86d7Az1JmbjOibHrI4o34KWUpAlBjrjY9uycEhx3/reVR+20S6qa9nWlb2uWg4CTwyu1zns9opWb5qWZWHS/Kk6DP2Fkttv3Afemc4rdlBpI8tRw/nC3ivAI/gTwekFhqUrJbE7m080O1z0YDatZOQtDUhwe54dufJ1";

fn text_body() -> TextBody {
    TextBody { text: "Contoso verification code: 123456. Do not share it.".into(), code: "123456".into() }
}

fn phone_request(action: PhoneAction) -> PhoneRequest {
    PhoneRequest { v: VERSION, device_id: "dev_fedcba9876543210".into(), action, at: 1_796_290_010 }
}

fn call() -> PhoneCall {
    PhoneCall {
        v: VERSION,
        id: "si_0123456789abcdef".into(),
        device_id: "dev_fedcba9876543210".into(),
        to: "+41446681800".into(),
        extension: "123".into(),
        say: "Contoso VPN asks to sign in alice. Press the pound key to approve.".into(),
        created_at: 1_796_290_000,
        expires_at: 1_796_290_060,
    }
}

/// Every message of the protocol, by fixture name.
fn messages() -> Vec<(&'static str, serde_json::Value)> {
    let json = |value: &dyn erased::Json| value.to_json();
    let phone = |action| json(&ClientMessage::Phone { envelope: device_key().seal(PHONE_CONTEXT, &phone_request(action)) });
    vec![
        ("challenge.json", json(&challenge())),
        ("response.json", json(&response())),
        (
            "activation-request.json",
            json(&ActivationRequest {
                code: "123456789012".into(),
                device_public_key: device_key().public(),
                device_name: "alice's laptop".into(),
                listener_public_key: None,
            }),
        ),
        (
            "activation-request-listener.json",
            json(&ActivationRequest {
                code: "123456789012".into(),
                device_public_key: device_key().public(),
                device_name: "alice's laptop".into(),
                listener_public_key: Some(listener_key().public()),
            }),
        ),
        ("activation-response.json", json(&activation_response(false))),
        ("activation-response-listener.json", json(&activation_response(true))),
        (
            "api-error.json",
            json(&ApiError {
                error: "too_many_attempts".into(),
                message: "This activation code was tried 5 times and is no longer valid.".into(),
            }),
        ),
        ("server-hello.json", json(&ServerMessage::Hello { nonce: "bm9uY2Utbm9uY2Utbm9uY2U=".into(), time: None })),
        ("server-hello-time.json", json(&ServerMessage::Hello { nonce: "bm9uY2Utbm9uY2Utbm9uY2U=".into(), time: Some(1_796_290_000) })),
        ("server-listener-registered.json", json(&ServerMessage::ListenerRegistered { device_id: "dev_fedcba9876543210".into() })),
        ("client-listen.json", json(&listen(&listener_key(), "dev_fedcba9876543210", "bm9uY2Utbm9uY2Utbm9uY2U=", &server_key().public()))),
        (
            "client-register-listener.json",
            json(&ClientMessage::RegisterListener { envelope: device_key().seal(LISTENER_CONTEXT, &registration()) }),
        ),
        ("server-ready.json", json(&ServerMessage::Ready { phones: None })),
        ("server-ready-phones.json", json(&ServerMessage::Ready { phones: Some(vec!["+41446681800".into()]) })),
        ("server-challenge.json", json(&ServerMessage::Challenge { envelope: server_key().seal(CHALLENGE_CONTEXT, &challenge()) })),
        (
            "server-result.json",
            json(&ServerMessage::Result {
                challenge_id: "si_0123456789abcdef".into(),
                accepted: true,
                status: "approved".into(),
                reason: String::new(),
            }),
        ),
        ("client-auth.json", json(&auth(&device_key(), "dev_fedcba9876543210", "bm9uY2Utbm9uY2Utbm9uY2U="))),
        (
            "client-auth-bound.json",
            json(&auth_bound(
                &device_key(),
                "dev_fedcba9876543210",
                "bm9uY2Utbm9uY2Utbm9uY2U=",
                &server_key().public(),
                "wss://mfa.contoso.example/api/push",
            )),
        ),
        ("client-respond.json", json(&ClientMessage::Respond { envelope: device_key().seal(RESPONSE_CONTEXT, &response()) })),
        ("server-text.json", json(&ServerMessage::Text { envelope: server_key().seal(TEXT_CONTEXT, &text()) })),
        ("server-call.json", json(&ServerMessage::Call { envelope: server_key().seal(CALL_CONTEXT, &call()) })),
        ("server-phones.json", json(&ServerMessage::Phones { numbers: vec!["+41446681800".into()], refused: None })),
        (
            "server-phones-refused.json",
            json(&ServerMessage::Phones {
                numbers: Vec::new(),
                refused: Some("+41446681801 is not one of your phones: set it on the enrollment page first".into()),
            }),
        ),
        ("client-attach-phone.json", phone(PhoneAction::Attach { number: "+41 44 668 18 00".into() })),
        ("client-detach-phone.json", phone(PhoneAction::Detach { number: "+41446681800".into() })),
        ("client-reply.json", phone(PhoneAction::Reply { id: "si_0123456789abcdef".into(), text: "271828".into() })),
        ("client-keys.json", phone(PhoneAction::Keys { id: "si_0123456789abcdef".into(), keys: "#".into(), hang_up: false })),
    ]
}

mod erased {
    pub trait Json {
        fn to_json(&self) -> serde_json::Value;
    }
    impl<T: serde::Serialize> Json for T {
        fn to_json(&self) -> serde_json::Value {
            serde_json::to_value(self).expect("serialisable")
        }
    }
}

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/push")
}

#[test]
fn every_message_matches_its_golden_json() {
    for (name, value) in messages() {
        let path = fixtures().join(name);
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            std::fs::write(&path, serde_json::to_string_pretty(&value).unwrap() + "\n").unwrap();
        }
        let golden: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap_or_else(|e| panic!("{name}: {e}"))).unwrap();
        assert_eq!(value, golden, "{name} changed: the wire protocol is not what the fixture says");
    }
}

#[test]
fn golden_messages_parse_back_and_verify() {
    let read = |name: &str| std::fs::read(fixtures().join(name)).unwrap();
    let ServerMessage::Challenge { envelope } = serde_json::from_slice(&read("server-challenge.json")).unwrap() else {
        panic!("not a challenge")
    };
    assert_eq!(open_challenge(&envelope, &server_key().public(), "dev_fedcba9876543210").unwrap(), challenge());
    let ClientMessage::Respond { envelope } = serde_json::from_slice(&read("client-respond.json")).unwrap() else {
        panic!("not a response")
    };
    assert_eq!(envelope.open::<Response>(&device_key().public(), RESPONSE_CONTEXT).unwrap(), response());
    let ClientMessage::Auth { signature, .. } = serde_json::from_slice(&read("client-auth.json")).unwrap() else { panic!("not auth") };
    assert_eq!(check_auth(&device_key().public(), "bm9uY2Utbm9uY2Utbm9uY2U=", &signature), Ok(()));
    let ClientMessage::Auth { signature, .. } = serde_json::from_slice(&read("client-auth-bound.json")).unwrap() else {
        panic!("not auth")
    };
    let (nonce, server, endpoint) = ("bm9uY2Utbm9uY2Utbm9uY2U=", server_key().public(), "wss://mfa.contoso.example/api/push");
    assert_eq!(check_auth_bound(&device_key().public(), nonce, &server, endpoint, &signature), Ok(()));
    // Made for another server or another endpoint, or taken for the unbound kind: refused.
    assert!(check_auth_bound(&device_key().public(), nonce, &Keypair::generate().unwrap().public(), endpoint, &signature).is_err());
    assert!(check_auth_bound(&device_key().public(), nonce, &server, "wss://elsewhere.example/api/push", &signature).is_err());
    assert!(check_auth(&device_key().public(), nonce, &signature).is_err());
    let ClientMessage::Listen { signature, .. } = serde_json::from_slice(&read("client-listen.json")).unwrap() else {
        panic!("not listen")
    };
    assert_eq!(check_listen(&listener_key().public(), "bm9uY2Utbm9uY2Utbm9uY2U=", &server_key().public(), &signature), Ok(()));
    let ClientMessage::RegisterListener { envelope } = serde_json::from_slice(&read("client-register-listener.json")).unwrap() else {
        panic!("not a registration")
    };
    assert_eq!(envelope.open::<ListenerRegistration>(&device_key().public(), LISTENER_CONTEXT).unwrap(), registration());
}

#[test]
fn texts_and_calls_open_only_with_the_server_key_for_this_device() {
    let read = |name: &str| std::fs::read(fixtures().join(name)).unwrap();
    let server = server_key().public();
    let ServerMessage::Text { envelope } = serde_json::from_slice(&read("server-text.json")).unwrap() else { panic!("not a text") };
    assert_eq!(open_text(&envelope, &server, "dev_fedcba9876543210").unwrap(), text());
    assert!(matches!(open_text(&envelope, &server, "dev_other"), Err(Error::Malformed(_))));
    assert_eq!(open_text(&envelope, &Keypair::from_seed(&[1; 32]).unwrap().public(), "dev_fedcba9876543210"), Err(Error::BadSignature));
    // A text's signature is no call's, nor a challenge's.
    assert_eq!(open_call(&envelope, &server, "dev_fedcba9876543210"), Err(Error::BadSignature));
    assert_eq!(open_challenge(&envelope, &server, "dev_fedcba9876543210"), Err(Error::BadSignature));
    let ServerMessage::Call { envelope } = serde_json::from_slice(&read("server-call.json")).unwrap() else { panic!("not a call") };
    assert_eq!(open_call(&envelope, &server, "dev_fedcba9876543210").unwrap(), call());
    assert_eq!(open_text(&envelope, &server, "dev_fedcba9876543210"), Err(Error::BadSignature));
    let mut later = call();
    later.v = VERSION + 1;
    assert_eq!(open_call(&server_key().seal(CALL_CONTEXT, &later), &server, "dev_fedcba9876543210"), Err(Error::Version(VERSION + 1)));
}

#[test]
fn a_text_says_what_it_says_only_to_its_device_key() {
    let body = text().open(&device_key()).unwrap();
    assert_eq!(body, text_body());
    assert_eq!(format!("{body:?}"), "TextBody(..)");
    // Not the server's key, nor another device's, nor a listener key.
    for key in [server_key(), listener_key(), Keypair::from_seed(&[1; 32]).unwrap()] {
        assert_eq!(text().open(&key), Err(Error::Malformed("sealed box")));
    }
    // A fresh seal opens too, and never repeats (each has its own ephemeral key).
    let sealed = text_body().seal_to(&device_key().public()).unwrap();
    assert_ne!(sealed, SEALED_TEXT);
    assert_eq!(PhoneText { sealed, ..text() }.open(&device_key()).unwrap(), text_body());
    // One changed byte and it opens no more.
    let mut bytes = crate::base64::decode(SEALED_TEXT).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    assert_eq!(PhoneText { sealed: crate::base64::encode(bytes), ..text() }.open(&device_key()), Err(Error::Malformed("sealed box")));
}

#[test]
fn phone_requests_open_only_with_the_device_key_and_their_context() {
    let read = |name: &str| std::fs::read(fixtures().join(name)).unwrap();
    let ClientMessage::Phone { envelope } = serde_json::from_slice(&read("client-reply.json")).unwrap() else {
        panic!("not a phone request")
    };
    let request: PhoneRequest = envelope.open(&device_key().public(), PHONE_CONTEXT).unwrap();
    assert_eq!(request, phone_request(PhoneAction::Reply { id: "si_0123456789abcdef".into(), text: "271828".into() }));
    // The code typed never shows in Debug.
    assert!(!format!("{request:?}").contains("271828"), "{request:?}");
    assert_eq!(envelope.open::<PhoneRequest>(&listener_key().public(), PHONE_CONTEXT), Err(Error::BadSignature));
    assert_eq!(envelope.open::<PhoneRequest>(&device_key().public(), RESPONSE_CONTEXT), Err(Error::BadSignature));
}

#[test]
fn a_message_type_from_a_newer_server_is_skipped_not_an_error() {
    let message: ServerMessage = serde_json::from_str(r#"{"type":"hologram","frames":3}"#).unwrap();
    assert_eq!(message, ServerMessage::Unknown);
    assert!(serde_json::from_str::<ServerMessage>(r#"{"frames":3}"#).is_err(), "a message without a type is still malformed");
}

#[test]
fn messages_of_older_versions_still_parse() {
    // A server from before receive-only sessions says hello without its time,
    // and an app from before them activates without a listener key.
    let read = |name: &str| std::fs::read(fixtures().join(name)).unwrap();
    assert_eq!(
        serde_json::from_slice::<ServerMessage>(&read("server-hello.json")).unwrap(),
        ServerMessage::Hello { nonce: "bm9uY2Utbm9uY2Utbm9uY2U=".into(), time: None }
    );
    let request: ActivationRequest = serde_json::from_slice(&read("activation-request.json")).unwrap();
    assert_eq!(request.listener_public_key, None);
    let response: ActivationResponse = serde_json::from_slice(&read("activation-response.json")).unwrap();
    assert!(!response.listener);
}

#[test]
fn a_listener_signature_opens_no_other_door() {
    let nonce = "bm9uY2Utbm9uY2Utbm9uY2U=";
    let ClientMessage::Listen { signature, .. } = listen(&listener_key(), "d", nonce, &server_key().public()) else { unreachable!() };
    // Made for another server: refused, so a server cannot relay it to another.
    let other_server = Keypair::from_seed(&[1; 32]).unwrap().public();
    assert_eq!(check_listen(&listener_key().public(), nonce, &other_server, &signature), Err(Error::BadSignature));
    // Never a device-key proof, even if a server mixed up its keys.
    assert_eq!(check_auth(&listener_key().public(), nonce, &signature), Err(Error::BadSignature));
    // The listener key cannot sign an answer the server would take.
    let answer = listener_key().seal(RESPONSE_CONTEXT, &response());
    assert_eq!(answer.open::<Response>(&device_key().public(), RESPONSE_CONTEXT), Err(Error::BadSignature));
    // A registration signed by anything but the device key is refused.
    let forged = listener_key().seal(LISTENER_CONTEXT, &registration());
    assert_eq!(forged.open::<ListenerRegistration>(&device_key().public(), LISTENER_CONTEXT), Err(Error::BadSignature));
}

#[test]
fn forged_or_misused_signatures_are_refused() {
    let envelope = server_key().seal(CHALLENGE_CONTEXT, &challenge());
    // Another key: forged.
    assert_eq!(
        open_challenge(&envelope, &Keypair::from_seed(&[1; 32]).unwrap().public(), "dev_fedcba9876543210"),
        Err(Error::BadSignature)
    );
    // The right key, but signed as another kind of message.
    let as_response = server_key().seal(RESPONSE_CONTEXT, &challenge());
    assert_eq!(open_challenge(&as_response, &server_key().public(), "dev_fedcba9876543210"), Err(Error::BadSignature));
    // A changed payload under the old signature.
    let mut changed = challenge();
    changed.app = "Evil".into();
    let tampered = Envelope { payload: server_key().seal(CHALLENGE_CONTEXT, &changed).payload, signature: envelope.signature.clone() };
    assert_eq!(open_challenge(&tampered, &server_key().public(), "dev_fedcba9876543210"), Err(Error::BadSignature));
    // Addressed to another device.
    assert!(matches!(open_challenge(&envelope, &server_key().public(), "dev_other"), Err(Error::Malformed(_))));
    assert_eq!(
        check_auth(
            &device_key().public(),
            "another nonce",
            match auth(&device_key(), "d", "nonce") {
                ClientMessage::Auth { signature, .. } => signature,
                _ => unreachable!(),
            }
            .as_str()
        ),
        Err(Error::BadSignature)
    );
}

#[test]
fn debug_never_shows_secrets() {
    let key = device_key();
    let shown = format!("{key:?}");
    assert!(shown.starts_with("Keypair(") && !shown.contains(&base64::encode(*key.to_seed())), "{shown}");
    let response = ActivationResponse {
        organization: "Contoso".into(),
        user: "alice".into(),
        device_id: "d".into(),
        server_public_key: server_key().public(),
        totp_secret: "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ".into(),
        totp_digits: 6,
        totp_period: 30,
        push_endpoint: "ws://x".into(),
        listener: true,
    };
    assert!(!format!("{response:?}").contains("GEZDGNBV"));
}

#[test]
fn a_deadline_counts_on_the_servers_clock_or_from_arrival() {
    let challenge = challenge(); // created at 1_796_290_000, 60 s to live
    // Our clock 5 minutes behind the server's, arriving 10 s after creation:
    // 50 s left, counted from arrival on our clock.
    let ours = 1_796_290_010 - 300;
    assert_eq!(challenge.deadline(ours, Some(300)), ours + 50);
    // The same with our clock 5 minutes ahead.
    let ours = 1_796_290_010 + 300;
    assert_eq!(challenge.deadline(ours, Some(-300)), ours + 50);
    // A server that did not say its time: the whole lifetime from arrival.
    assert_eq!(challenge.deadline(ours, None), ours + 60);
    // Already over on the server: no time left; never more than its lifetime.
    assert_eq!(challenge.deadline(1_796_290_100, Some(0)), 1_796_290_100);
    assert_eq!(challenge.deadline(1_796_289_000, Some(0)), 1_796_289_060);
}

#[test]
fn a_status_is_the_text_servers_have_always_sent() {
    let named = [Status::Pending, Status::Approved, Status::Denied, Status::Reported, Status::Expired, Status::Closed, Status::Unknown];
    for status in named {
        let text = status.as_str().to_owned();
        assert_eq!(serde_json::to_string(&status).unwrap(), format!("\"{text}\""));
        assert_eq!(serde_json::from_str::<Status>(&format!("\"{text}\"")).unwrap(), status);
        assert_eq!(Status::from(text.as_str()), status);
    }
    // A newer server's status is kept as sent, both ways.
    let later: Status = serde_json::from_str("\"escalated\"").unwrap();
    assert_eq!(later, Status::Other("escalated".into()));
    assert_eq!(Status::from("escalated"), later);
    assert_eq!(serde_json::to_string(&later).unwrap(), "\"escalated\"");
    let result: ServerMessage =
        serde_json::from_str(r#"{"type":"result","challenge_id":"si_1","accepted":false,"status":"","reason":"refused"}"#).unwrap();
    assert!(matches!(result, ServerMessage::Result { status: Status::Unknown, .. }));
}
