//! The `countersign` command line, run as a real process against real vault files.

mod common;

use common::{Sandbox, names};
use hmac::{Hmac, KeyInit, Mac};

const SECRET: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";

#[test]
fn add_three_accounts_then_list_and_code() {
    let sandbox = Sandbox::new();
    sandbox.init();
    sandbox.ok(&["add", "--uri", "otpauth://totp/GitHub:alice?secret=JBSWY3DPEHPK3PXP&issuer=GitHub"]);
    sandbox.ok(&["add", "--issuer", "RFC", "--account", "hotp", "--secret", SECRET, "--type", "hotp"]);
    sandbox.ok(&["add", "--uri", "otpauth://steam/Steam:gabe?secret=JBSWY3DPEHPK3PXP"]);

    let list: serde_json::Value = serde_json::from_str(&sandbox.ok(&["list", "--json"])).unwrap();
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 3);
    assert_eq!(list[0]["issuer"], "GitHub");
    assert_eq!(list[1]["type"], "hotp");
    assert_eq!(list[1]["counter"], 0);
    assert_eq!(list[2]["type"], "steam");
    assert!(!serde_json::to_string(&list).unwrap().contains("JBSWY3DPEHPK3PXP"), "list never shows secrets");

    // RFC 4226 Appendix D through the vault: counter 0, then --next moves to 1 and stays there.
    assert_eq!(sandbox.ok(&["code", "rfc", "-q"]), "755224\n");
    assert_eq!(sandbox.ok(&["code", "rfc", "--next", "-q"]), "287082\n");
    assert_eq!(sandbox.ok(&["code", "rfc", "-q"]), "287082\n");

    let codes: serde_json::Value = serde_json::from_str(&sandbox.ok(&["code", "--json", "--at", "2026-11-23T12:00:10Z"])).unwrap();
    let github = &codes[0];
    assert_eq!(github["issuer"], "GitHub");
    assert_eq!(github["seconds_left"], 20);
    assert_eq!(github["code"], totp("JBSWY3DPEHPK3PXP", "SHA1", 6, 30, 1_795_435_210));
    assert_eq!(codes[2]["code"].as_str().unwrap().len(), 5);

    let human = sandbox.ok(&["code", "github", "--at", "1795435210"]);
    assert!(human.contains("20 s left") && human.contains("GitHub (alice)"), "{human}");
}

#[test]
fn wrong_password_exits_non_zero_with_a_clear_message() {
    let sandbox = Sandbox::new();
    sandbox.init();
    let before = std::fs::read(sandbox.path()).unwrap();
    let output = sandbox.command().env("COUNTERSIGN_PASSWORD_FILE", "/dev/null").env("COUNTERSIGN_PASSWORD", "guess").args(["list"]).output().unwrap();
    // --password-file wins over the environment; /dev/null holds the empty password.
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&output.stderr), "countersign: wrong password\n");
    let output = sandbox.command().env_remove("COUNTERSIGN_PASSWORD_FILE").env("COUNTERSIGN_PASSWORD", "guess").args(["add", "--uri", "otpauth://totp/x?secret=JBSWY3DPEHPK3PXP"]).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&output.stderr), "countersign: wrong password\n");
    assert_eq!(std::fs::read(sandbox.path()).unwrap(), before, "nothing written");
}

#[test]
fn a_flipped_byte_gives_a_clear_error_and_the_file_is_unchanged() {
    let sandbox = Sandbox::new();
    sandbox.init();
    sandbox.ok(&["add", "--uri", "otpauth://totp/x?secret=JBSWY3DPEHPK3PXP"]);
    let mut bytes = std::fs::read(sandbox.path()).unwrap();
    let middle = bytes.len() / 2 + 17;
    bytes[middle] ^= 0x01;
    std::fs::write(sandbox.path(), &bytes).unwrap();
    for args in [&["list"][..], &["add", "--uri", "otpauth://totp/y?secret=JBSWY3DPEHPK3PXP"][..], &["passwd", "--new-password-file", "/etc/hostname"][..]] {
        let output = sandbox.run(args);
        assert_eq!(output.status.code(), Some(1), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("is damaged") && stderr.contains(&sandbox.path().display().to_string()) && stderr.contains(".bak"), "{stderr}");
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
        assert_eq!(std::fs::read(sandbox.path()).unwrap(), bytes, "the damaged file is never overwritten");
    }
}

#[test]
fn bad_input_gets_one_line_errors() {
    let sandbox = Sandbox::new();
    sandbox.init();
    let cases: [(&[&str], &str); 7] = [
        (&["add", "--uri", "otpauth://hotp/x?secret=JBSWY3DPEHPK3PXP"], "missing parameter `counter`"),
        (&["add", "--uri", "otpauth://totp/x?secret=JBSWY3DPEHPK3PXP&digits=10"], "parameter `digits`"),
        (&["add", "--uri", "otpauth-migration://offline?data=AAAA"], "Google Authenticator export"),
        (&["add", "--account", "a", "--secret", "not base32!"], "--secret"),
        (&["code", "nothing-matches"], "has no accounts yet"),
        (&["code", "--uri", "otpauth://totp/x?secret=JBSWY3DPEHPK3PXP", "--at", "yesterday"], "--at"),
        (&["uri", "x"], "--reveal"),
    ];
    for (args, want) in cases {
        let output = sandbox.run(args);
        assert_eq!(output.status.code(), Some(1), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(want), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
    }
    assert!(names(&sandbox).is_empty());
}

#[test]
fn rename_remove_uri_and_passwd() {
    let sandbox = Sandbox::new();
    sandbox.init();
    sandbox.ok(&["add", "--uri", "otpauth://totp/Acme:alice?secret=JBSWY3DPEHPK3PXP"]);
    sandbox.ok(&["add", "--uri", "otpauth://totp/Acme:bob?secret=JBSWY3DPEHPK3PXP"]);
    let unmatched = sandbox.run(&["code", "initech"]);
    assert_eq!(String::from_utf8_lossy(&unmatched.stderr), "countersign: no account matches \"initech\"\n");
    let ambiguous = sandbox.run(&["rename", "acme", "--account", "x"]);
    assert!(String::from_utf8_lossy(&ambiguous.stderr).contains("2 accounts match"));
    sandbox.ok(&["rename", "bob", "--issuer", "Initech", "--account", "robert"]);
    assert_eq!(names(&sandbox), ["alice", "robert"]);
    let uri = sandbox.ok(&["uri", "robert", "--reveal"]);
    assert_eq!(uri.trim(), "otpauth://totp/Initech:robert?secret=JBSWY3DPEHPK3PXP&issuer=Initech&algorithm=SHA1&digits=6&period=30");
    let refused = sandbox.command().arg("remove").arg("alice").stdin(std::process::Stdio::null()).output().unwrap();
    assert!(!refused.status.success());
    sandbox.ok(&["remove", "alice", "--yes"]);
    assert_eq!(names(&sandbox), ["robert"]);

    let new_password = sandbox.dir.path().join("new");
    std::fs::write(&new_password, "another one\n").unwrap();
    sandbox.ok(&["passwd", "--new-password-file", new_password.to_str().unwrap(), "--kdf-memory", "1", "--kdf-passes", "1"]);
    assert_eq!(sandbox.run(&["list"]).status.code(), Some(1), "the old password no longer opens it");
    let listed = sandbox.command().env("COUNTERSIGN_PASSWORD_FILE", &new_password).args(["list", "--json"]).output().unwrap();
    assert!(listed.status.success() && String::from_utf8_lossy(&listed.stdout).contains("robert"));
    let refused = sandbox.command().env("COUNTERSIGN_PASSWORD_FILE", &new_password).args(["passwd", "--remove"]).output().unwrap();
    assert!(String::from_utf8_lossy(&refused.stderr).contains("refusing to remove the last way to open it"));
}

#[test]
fn inspect_prints_fields_and_warnings() {
    let sandbox = Sandbox::new();
    let out = sandbox.ok(&["inspect", "otpauth://totp/Old:bob?secret=jbsw%20y3dp%20ehpk%203pxp%3D%3D&issuer=New&period=60"]);
    for want in ["issuer: New", "label issuer: Old", "account: bob", "period: 60", "issuer mismatch", "padding fixed", "normalized", "ignores period=60"] {
        assert!(out.contains(want), "missing {want:?} in\n{out}");
    }
    let out = sandbox.ok(&["inspect", "phonefactor://activate_account?code=123456789&url=https%3A%2F%2Fexample.test%2Fa"]);
    assert!(out.contains("code: 123456789") && out.contains("url: https://example.test/a") && out.contains("not supported yet"), "{out}");
}

/// An independent TOTP: RustCrypto HMAC and the RFC 4226 truncation written
/// out here, not through totp-rs.
fn totp(secret: &str, algorithm: &str, digits: u32, period: u64, at: u64) -> String {
    let key = data_encoding::BASE32_NOPAD.decode(secret.as_bytes()).unwrap();
    let message = (at / period).to_be_bytes();
    let mac: Vec<u8> = match algorithm {
        "SHA1" => mac::<Hmac<sha1::Sha1>>(&key, &message),
        "SHA256" => mac::<Hmac<sha2::Sha256>>(&key, &message),
        _ => mac::<Hmac<sha2::Sha512>>(&key, &message),
    };
    let offset = usize::from(mac[mac.len() - 1] & 0x0f);
    let value = u32::from_be_bytes([mac[offset] & 0x7f, mac[offset + 1], mac[offset + 2], mac[offset + 3]]);
    format!("{:0width$}", value % 10u32.pow(digits), width = digits as usize)
}

fn mac<M: Mac + KeyInit>(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut mac = <M as KeyInit>::new_from_slice(key).unwrap();
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

#[test]
fn code_from_uri_agrees_with_an_independent_implementation() {
    let sandbox = Sandbox::new();
    let mut checked = 0;
    for secret in [SECRET, "JBSWY3DPEHPK3PXP", "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNA"] {
        for algorithm in ["SHA1", "SHA256", "SHA512"] {
            for digits in [6, 7, 8] {
                for period in [30, 60] {
                    let uri = format!("otpauth://totp/T:t?secret={secret}&algorithm={algorithm}&digits={digits}&period={period}");
                    for at in [0u64, 59, 1_111_111_109, 1_795_953_610, 20_000_000_000] {
                        let printed = sandbox.ok(&["code", "--uri", &uri, "--at", &at.to_string(), "-q"]);
                        assert_eq!(printed.trim(), totp(secret, algorithm, digits, period, at), "{uri} at {at}");
                        checked += 1;
                    }
                }
            }
        }
    }
    assert_eq!(checked, 3 * 3 * 3 * 2 * 5);
    // The last representable instant: a code, not an overflow panic.
    let last = sandbox.ok(&["code", "--uri", &format!("otpauth://totp/T:t?secret={SECRET}"), "--at", &u64::MAX.to_string(), "-q"]);
    assert_eq!(last.trim(), totp(SECRET, "SHA1", 6, 30, u64::MAX));
}
