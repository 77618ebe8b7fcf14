//! The `countersign` command line, run as a real process against real vault files.

#![cfg(feature = "cli")]

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
    let output = sandbox
        .command()
        .env("COUNTERSIGN_PASSWORD_FILE", "/dev/null")
        .env("COUNTERSIGN_PASSWORD", "guess")
        .args(["list"])
        .output()
        .unwrap();
    // --password-file wins over the environment; /dev/null holds the empty password.
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&output.stderr), "countersign: wrong password\n");
    let output = sandbox
        .command()
        .env_remove("COUNTERSIGN_PASSWORD_FILE")
        .env("COUNTERSIGN_PASSWORD", "guess")
        .args(["add", "--uri", "otpauth://totp/x?secret=JBSWY3DPEHPK3PXP"])
        .output()
        .unwrap();
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
    for args in [
        &["list"][..],
        &["add", "--uri", "otpauth://totp/y?secret=JBSWY3DPEHPK3PXP"][..],
        &["passwd", "--new-password-file", "/etc/hostname"][..],
    ] {
        let output = sandbox.run(args);
        assert_eq!(output.status.code(), Some(1), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("is damaged") && stderr.contains(&sandbox.path().display().to_string()) && stderr.contains(".bak"),
            "{stderr}"
        );
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
    for want in [
        "issuer: New",
        "label issuer: Old",
        "account: bob",
        "period: 60",
        "issuer mismatch",
        "padding fixed",
        "normalized",
        "ignores period=60",
    ] {
        assert!(out.contains(want), "missing {want:?} in\n{out}");
    }
    let out = sandbox.ok(&["inspect", "phonefactor://activate_account?code=123456789&url=https%3A%2F%2Fexample.test%2Fa"]);
    assert!(
        out.contains("code: 123456789")
            && out.contains("url: https://example.test/a")
            && out.contains("next: this is a work or school account activation; activate it with `countersign activate"),
        "{out}"
    );
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

#[test]
fn scan_prints_every_payload_and_fails_only_on_unreadable_files() {
    let sandbox = Sandbox::new();
    let dir = sandbox.dir.path();
    let (one, blank, text) = (dir.join("one.png"), dir.join("blank.png"), dir.join("notes.txt"));
    common::qr_png("otpauth://totp/A:b?secret=JBSWY3DPEHPK3PXP", &one);
    image::GrayImage::from_pixel(300, 200, image::Luma([255])).save(&blank).unwrap();
    std::fs::write(&text, "not an image").unwrap();
    let multi = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/corpus/multi/02.png");

    let output = sandbox.command().args(["scan"]).arg(&one).arg(&blank).arg(multi).output().unwrap();
    assert!(output.status.success());
    let stdout = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], "otpauth://totp/A:b?secret=JBSWY3DPEHPK3PXP");
    assert_eq!(lines.len(), 1 + 4, "four codes in multi/02: {stdout}");
    assert!(String::from_utf8_lossy(&output.stderr).contains("no QR code found in"));

    // An unreadable file: the others are still printed, then exit 1 with the file named.
    let output = sandbox.command().args(["scan"]).arg(&text).arg(&one).arg(dir.join("missing.png")).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&output.stdout), "otpauth://totp/A:b?secret=JBSWY3DPEHPK3PXP\n");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("notes.txt: not an image") && stderr.contains("missing.png") && stderr.contains("2 of 3 images could not be read"),
        "{stderr}"
    );

    let json: serde_json::Value =
        serde_json::from_str(&sandbox.ok(&["scan", "--json", blank.to_str().unwrap(), one.to_str().unwrap()])).unwrap();
    assert_eq!(json[0]["payloads"].as_array().unwrap().len(), 0);
    assert_eq!(json[1]["payloads"][0], "otpauth://totp/A:b?secret=JBSWY3DPEHPK3PXP");
}

#[test]
fn add_qr_takes_whole_google_exports_and_refuses_partial_ones_unless_asked() {
    use countersign::account::{Account, Algorithm};
    use countersign::migration::{Batch, encode};
    use countersign::secret::Secret;
    let sandbox = Sandbox::new();
    sandbox.init();
    let dir = sandbox.dir.path();
    let secret = |n: u8| Secret::from_bytes((0..20).map(|i| i * 7 + n).collect());
    let mut sha256 = Account::totp("Fastmail", "carol", secret(1));
    sha256.algorithm = Algorithm::Sha256;
    let (part1, _) = encode(&[Account::totp("GitHub", "alice", secret(0)), sha256], Batch { id: 42, index: 0, size: 2 });
    let (part2, _) = encode(&[Account::totp("Proton", "bob", secret(2))], Batch { id: 42, index: 1, size: 2 });
    let (png1, png2) = (dir.join("export-1.png"), dir.join("export-2.png"));
    common::qr_png(&part1, &png1);
    common::qr_png(&part2, &png2);
    let (png1, png2) = (png1.to_str().unwrap(), png2.to_str().unwrap());

    let inspected = sandbox.ok(&["inspect", &part1]);
    assert!(
        inspected.contains("batch: code 1 of 2 (export id 42)") && inspected.contains("account: Fastmail (carol) (totp, SHA256, 6 digits)"),
        "{inspected}"
    );

    // One code of two: refused, nothing written.
    let before = std::fs::read(sandbox.path()).unwrap();
    let output = sandbox.run(&["add", "--qr", png1]);
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stdout).contains("Google Authenticator export: 1 of 2 scanned"));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("incomplete (code 2 missing); nothing was added") && stderr.contains("--partial"), "{stderr}");
    assert_eq!(std::fs::read(sandbox.path()).unwrap(), before);

    // --partial adds what was scanned.
    let out = sandbox.ok(&["add", "--partial", "--qr", png1]);
    assert!(out.contains("Added GitHub (alice)") && out.contains("Added Fastmail (carol)") && out.contains("Added 2 of 2"), "{out}");
    assert_eq!(names(&sandbox), ["alice", "carol"]);

    // Both codes: the two already there are reported, the new one added.
    let out = sandbox.ok(&["add", "--qr", png2, png1]);
    assert!(
        out.contains("2 of 2 scanned")
            && out.contains("Skipped GitHub (alice): already in the vault")
            && out.contains("Added Proton (bob)"),
        "{out}"
    );
    assert!(out.contains("Added 1 of 3 accounts."), "{out}");
    assert_eq!(names(&sandbox), ["alice", "carol", "bob"]);

    // The imported SHA-256 account gives the independently computed code.
    let codes: serde_json::Value = serde_json::from_str(&sandbox.ok(&["code", "fastmail", "--json", "--at", "1795435210"])).unwrap();
    let base32 = secret(1).to_base32();
    assert_eq!(codes[0]["code"], totp(&base32, "SHA256", 6, 30, 1_795_435_210));

    // Scanning the same export again adds nothing, saves nothing (no
    // rewrite, no backup) and says so with exit 1.
    let backups = |sandbox: &Sandbox| std::fs::read_dir(sandbox.dir.path().join("backups")).unwrap().count();
    let (before, backups_before) = (std::fs::read(sandbox.path()).unwrap(), backups(&sandbox));
    let output = sandbox.run(&["add", "--qr", png1, png2]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&output.stderr), "countersign: nothing was added; the vault was not changed\n");
    assert_eq!((std::fs::read(sandbox.path()).unwrap() == before, backups(&sandbox)), (true, backups_before));
}

#[test]
fn an_export_claiming_a_huge_batch_is_refused_and_missing_codes_are_ranges() {
    use countersign::account::Account;
    use countersign::migration::{Batch, encode};
    use countersign::secret::Secret;
    let sandbox = Sandbox::new();
    sandbox.init();
    let before = std::fs::read(sandbox.path()).unwrap();
    let link = |size: u32| encode(&[Account::totp("GitHub", "alice", Secret::from_bytes(vec![7; 20]))], Batch { id: 1, index: 0, size }).0;
    // Two billion codes claimed: a clear refusal, not memory until it runs out.
    let output = sandbox.run(&["add", "--uri", &link(2_000_000_000)]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        stderr,
        "countersign: --uri: the export says it is split over 2000000000 codes; Google Authenticator never makes more than 1000\n"
    );
    // The largest batch believed: the missing codes are one range.
    let output = sandbox.run(&["add", "--uri", &link(1000)]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("incomplete (codes 2 to 1000 missing); nothing was added"), "{stderr}");
    assert_eq!(std::fs::read(sandbox.path()).unwrap(), before);
    let output = sandbox.run(&["add", "--uri", &link(1000), "--partial"]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(String::from_utf8_lossy(&output.stderr).contains("adding a partial export; codes 2 to 1000 not scanned"));
    assert_eq!(names(&sandbox), ["alice"]);
}

#[test]
fn an_issuer_with_a_colon_is_added_with_a_space_as_other_importers_do() {
    let sandbox = Sandbox::new();
    sandbox.init();
    let output = sandbox.run(&["add", "--uri", "otpauth://totp/ACME%3A%20Staging:alice?secret=JBSWY3DPEHPK3PXP&issuer=ACME%3A%20Staging"]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("the issuer \"ACME: Staging\" has a ':'"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let list: serde_json::Value = serde_json::from_str(&sandbox.ok(&["list", "--json"])).unwrap();
    assert_eq!((list[0]["issuer"].as_str(), list[0]["account"].as_str()), (Some("ACME  Staging"), Some("alice")));
}

#[test]
fn add_qr_explains_activation_codes_and_other_payloads_without_secrets() {
    let sandbox = Sandbox::new();
    sandbox.init();
    let dir = sandbox.dir.path();
    let activation = dir.join("activation.png");
    common::qr_png("phonefactor://activate_account?code=123456789&url=https%3A%2F%2Fmfa.example.test%2Fa", &activation);
    let output = sandbox.command().args(["add", "--qr"]).arg(&activation).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("work or school account activation (Code 123456789, URL https://mfa.example.test/a)")
            && stdout.contains("countersign activate --qr"),
        "{stdout}"
    );

    // A broken otpauth URI: the report names the problem, never the secret.
    let broken = dir.join("broken.png");
    common::qr_png("otpauth://totp/x?secret=JBSWY3DPEHPK3PXP&digits=12", &broken);
    let plain = dir.join("plain.png");
    common::qr_png("otpauth://totp/Acme:dora?secret=GEZDGNBVGY3TQOJQ&issuer=Acme", &plain);
    let output = sandbox.command().args(["add", "--qr"]).arg(&broken).arg(&plain).output().unwrap();
    assert!(output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("broken.png: not an enrollment code") && stdout.contains("digits") && stdout.contains("Added Acme (dora)"),
        "{stdout}"
    );
    assert!(!stdout.contains("JBSWY3DP") && !String::from_utf8_lossy(&output.stderr).contains("JBSWY3DP"));
    assert_eq!(names(&sandbox), ["dora"]);
}

#[test]
fn activation_over_plain_http_to_another_machine_is_refused_before_anything_is_sent() {
    let sandbox = Sandbox::new();
    sandbox.init();
    let output = sandbox.run(&["activate", "--code", "123456789", "--url", "http://mfa.example.test/api/activate"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("plain http://") && stderr.contains("--insecure") && !stderr.contains("123456789"), "{stderr}");
    assert!(names(&sandbox).is_empty(), "nothing was added");
}
