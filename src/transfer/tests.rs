use std::path::PathBuf;

use proptest::prelude::*;
use serde::Deserialize;

use super::*;
use crate::account::{Algorithm, Method};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/import")
}

fn password() -> Password {
    Password::new("countersign-test".into())
}

/// The accounts every exporter is tested with: each type, hash and length.
fn sample() -> Vec<Entry> {
    let secret = |text: &[u8]| Secret::from_bytes(text.to_vec());
    let mut github = Account::totp("GitHub", "bob", secret(b"12345678901234567890123456789012"));
    github.algorithm = Algorithm::Sha256;
    github.digits = 8;
    github.method = Method::Totp { period: 60 };
    let mut hotp = Account::totp("Example", "carol", secret(b"abcdefghijabcdefghij"));
    hotp.method = Method::Hotp { counter: 5 };
    let mut steam = Account::totp("Steam", "dave", secret(b"steamsteamsteamsteam"));
    steam.method = Method::Steam;
    steam.digits = STEAM_DIGITS;
    let mut sha512 = Account::totp("", "no-issuer", secret(b"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"));
    sha512.algorithm = Algorithm::Sha512;
    sha512.digits = 7;
    [Account::totp("Acme Corp", "alice@example.com", secret(b"12345678901234567890")), github, hotp, steam, sha512]
        .into_iter()
        .enumerate()
        .map(|(index, account)| Entry { id: vault::Id::for_tests(index), added: 1, account, push: None })
        .collect()
}

fn accounts(contents: &Contents) -> Vec<Account> {
    contents.items.iter().map(|item| item.account.clone().unwrap_or_else(|skip| panic!("{}: {skip}", item.title))).collect()
}

fn round_trip(format: ExportFormat, import_as: Format) -> Vec<Account> {
    let export = export(format, &sample(), Some(&password())).unwrap();
    assert!(export.left_out.is_empty(), "{:?}", export.left_out);
    assert_eq!(export.files.len(), 1);
    let bytes = &export.files[0].bytes;
    assert_eq!(detect(bytes), Some((import_as, format.is_encrypted())));
    if format.is_encrypted() {
        assert_eq!(read(bytes, None, None), Err(Problem::PasswordNeeded(import_as)));
        assert_eq!(read(bytes, None, Some(&Password::new("wrong".into()))), Err(Problem::WrongPassword));
    }
    let contents = read(bytes, None, Some(&password())).unwrap();
    assert_eq!(contents.format, import_as);
    accounts(&contents)
}

fn originals() -> Vec<Account> {
    sample().into_iter().map(|entry| entry.account).collect()
}

#[test]
fn aegis_encrypted_round_trips() {
    assert_eq!(round_trip(ExportFormat::AegisEncrypted, Format::Aegis), originals());
}

#[test]
fn aegis_plain_round_trips() {
    assert_eq!(round_trip(ExportFormat::Aegis, Format::Aegis), originals());
}

#[test]
fn uri_list_round_trips() {
    assert_eq!(round_trip(ExportFormat::UriList, Format::UriList), originals());
}

#[test]
fn countersign_backup_round_trips() {
    assert_eq!(round_trip(ExportFormat::Countersign, Format::Countersign), originals());
}

#[test]
fn google_codes_scan_back_to_the_accounts_google_can_hold() {
    let mut entries = sample();
    // Enough accounts for two codes.
    for index in 0..9u8 {
        let mut account = Account::totp("Bulk", &format!("user{index}"), Secret::from_bytes(vec![index + 1; 20]));
        account.digits = 6;
        entries.push(Entry { id: vault::Id::for_tests(100 + index as usize), added: 1, account, push: None });
    }
    let export = export(ExportFormat::GoogleQr, &entries, None).unwrap();
    // Steam, 60 s and 7 digits cannot go to Google Authenticator.
    let left_out: Vec<&str> = export.left_out.iter().map(|(title, _)| title.as_str()).collect();
    assert_eq!(left_out, ["GitHub (bob)", "Steam (dave)", "no-issuer"]);
    assert_eq!(
        export.files.iter().map(|f| f.name.as_str()).collect::<Vec<_>>(),
        ["google-authenticator-1-of-2.png", "google-authenticator-2-of-2.png"]
    );
    let mut text = String::new();
    for file in &export.files {
        let found = crate::scan::encoded(&file.bytes).unwrap();
        assert_eq!(found.len(), 1, "{}", file.name);
        text.push_str(&found[0]);
        text.push('\n');
    }
    let contents = read(text.as_bytes(), None, None).unwrap();
    assert_eq!(contents.format, Format::GoogleMigration);
    assert!(contents.notes.is_empty(), "{:?}", contents.notes);
    let expected: Vec<Account> = entries.into_iter().map(|e| e.account).filter(migration::fits).collect();
    assert_eq!(accounts(&contents), expected);
}

#[test]
fn a_google_export_missing_a_code_says_which() {
    let entries: Vec<Entry> = (0..12u8)
        .map(|i| Entry {
            id: vault::Id::for_tests(i.into()),
            added: 1,
            account: Account::totp("Bulk", &format!("u{i}"), Secret::from_bytes(vec![i + 1; 20])),
            push: None,
        })
        .collect();
    let export = export(ExportFormat::GoogleQr, &entries, None).unwrap();
    let found = crate::scan::encoded(&export.files[1].bytes).unwrap();
    let contents = read(found[0].as_bytes(), None, None).unwrap();
    assert_eq!(contents.items.len(), 4);
    assert_eq!(contents.notes.len(), 1);
    assert!(contents.notes[0].contains("code 1 is missing"), "{:?}", contents.notes);
}

#[derive(Deserialize)]
struct Expected {
    issuer: String,
    name: String,
    secret: String,
    #[serde(rename = "type")]
    kind: String,
    algorithm: String,
    digits: u8,
    period: Option<u64>,
    counter: Option<u64>,
}

impl Expected {
    fn account(&self) -> Account {
        let mut account = Account::totp(&self.issuer, &self.name, Secret::from_base32(&self.secret).unwrap().0);
        account.algorithm = self.algorithm.parse().unwrap();
        account.digits = self.digits;
        account.method = match self.kind.as_str() {
            "totp" => Method::Totp { period: self.period.unwrap() },
            "hotp" => Method::Hotp { counter: self.counter.unwrap() },
            "steam" => Method::Steam,
            other => panic!("{other}"),
        };
        account
    }
}

/// Every fixture, written by `tests/fixtures/import/make.py` from each
/// format's documentation, imports to exactly the accounts it lists.
#[test]
fn every_fixture_imports_to_its_expected_accounts() {
    let expected: std::collections::BTreeMap<String, Vec<Expected>> =
        serde_json::from_slice(&std::fs::read(fixtures().join("expected.json")).unwrap()).unwrap();
    assert_eq!(expected.len(), 12, "one fixture per format and variant");
    for (file, accounts_expected) in &expected {
        let bytes = std::fs::read(fixtures().join(file)).unwrap();
        let (format, encrypted) = detect(&bytes).unwrap_or_else(|| panic!("{file}: not detected"));
        let contents = read(&bytes, None, encrypted.then(password).as_ref()).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(contents.format, format);
        let want: Vec<Account> = accounts_expected.iter().map(Expected::account).collect();
        assert_eq!(accounts(&contents), want, "{file}");
        if encrypted {
            assert_eq!(read(&bytes, None, None), Err(Problem::PasswordNeeded(format)), "{file}");
            assert_eq!(read(&bytes, None, Some(&Password::new("wrong".into()))), Err(Problem::WrongPassword), "{file}");
        }
    }
}

#[test]
fn formats_are_told_apart_by_content() {
    let detected = |name: &str| detect(&std::fs::read(fixtures().join(name)).unwrap());
    assert_eq!(detected("aegis-plain.json"), Some((Format::Aegis, false)));
    assert_eq!(detected("aegis-encrypted.json"), Some((Format::Aegis, true)));
    assert_eq!(detected("2fas-plain.2fas"), Some((Format::TwoFas, false)));
    assert_eq!(detected("2fas-encrypted.2fas"), Some((Format::TwoFas, true)));
    assert_eq!(detected("andotp-plain.json"), Some((Format::AndOtp, false)));
    assert_eq!(detected("andotp-encrypted.json.aes"), Some((Format::AndOtp, true)));
    assert_eq!(detected("bitwarden.json"), Some((Format::Bitwarden, false)));
    assert_eq!(detected("freeotp-plus.json"), Some((Format::FreeOtpPlus, false)));
    assert_eq!(detected("freeotp-plus-uris.txt"), Some((Format::UriList, false)));
    assert_eq!(detected("ente-plain.txt"), Some((Format::Ente, false)));
    assert_eq!(detected("uris.txt"), Some((Format::UriList, false)));
    assert_eq!(detected("google-migration.txt"), Some((Format::GoogleMigration, false)));
    assert_eq!(detect(b"hello\nworld"), None);
    assert_eq!(detect(b"{\"some\": \"json\"}"), None);
    assert_eq!(read(b"{\"some\": \"json\"}", None, None), Err(Problem::Unrecognised));
}

#[test]
fn an_issuer_with_a_colon_gets_the_same_name_from_every_format() {
    let secret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
    let aegis = format!(
        r#"{{"version":1,"header":{{"slots":null,"params":null}},"db":{{"version":3,"entries":[{{"type":"totp","name":"alice","issuer":"ACME: Staging","info":{{"secret":"{secret}","algo":"SHA1","digits":6,"period":30}}}}]}}}}"#
    );
    let uris = format!("otpauth://totp/ACME%3A%20Staging:alice?secret={secret}&issuer=ACME%3A%20Staging\n");
    let from_aegis = accounts(&read(aegis.as_bytes(), None, None).unwrap());
    let from_uri = accounts(&read(uris.as_bytes(), None, None).unwrap());
    assert_eq!(from_aegis[0].issuer, "ACME  Staging");
    assert_eq!(from_uri, from_aegis);
}

#[test]
fn a_named_format_refuses_a_file_of_another_shape_by_name() {
    let fixture = |name: &str| std::fs::read(fixtures().join(name)).unwrap();
    let aegis = fixture("aegis-plain.json");
    let error = read(&aegis, Some(Format::Bitwarden), None).unwrap_err();
    assert_eq!(error, Problem::OtherFormat { expected: Format::Bitwarden, found: Format::Aegis });
    assert_eq!(error.to_string(), "it is not a Bitwarden export: it looks like an Aegis export");
    for expected in
        [Format::TwoFas, Format::AndOtp, Format::FreeOtpPlus, Format::UriList, Format::Ente, Format::GoogleMigration, Format::Countersign]
    {
        assert_eq!(read(&aegis, Some(expected), Some(&password())), Err(Problem::OtherFormat { expected, found: Format::Aegis }));
    }
    assert_eq!(
        read(&fixture("bitwarden.json"), Some(Format::Aegis), None),
        Err(Problem::OtherFormat { expected: Format::Aegis, found: Format::Bitwarden })
    );
    // Shaped like nothing known: the format expected is still named.
    let error = read(b"{\"some\": \"json\"}", Some(Format::Bitwarden), None).unwrap_err();
    assert_eq!((error.clone(), error.to_string()), (Problem::NotFormat(Format::Bitwarden), "it is not a Bitwarden export".to_owned()));
    assert_eq!(read(b"hello\nworld", Some(Format::UriList), None), Err(Problem::NotFormat(Format::UriList)));
    // Within a format's outline the caller's choice still wins over detection.
    assert_eq!(read(&fixture("uris.txt"), Some(Format::Ente), None).unwrap().format, Format::Ente);
    assert_eq!(read(&fixture("bitwarden.json"), Some(Format::Bitwarden), None).unwrap().items.len(), 3);
}

#[test]
fn bad_entries_are_reported_one_by_one_not_dropped() {
    let text = "otpauth://totp/A:a?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\n\notpauth://totp/B:b?secret=not*base32\notpauth://yandex/C:c?secret=GEZDGNBVGY3TQOJQ\nphonefactor://activate_account?code=123&url=https://x\n";
    let contents = read(text.as_bytes(), None, None).unwrap();
    let report: Vec<(String, bool)> = contents.items.iter().map(|item| (item.title.clone(), item.account.is_ok())).collect();
    assert_eq!(report, [("A (a)".into(), true), ("line 3".into(), false), ("line 4".into(), false), ("line 5".into(), false)]);
    assert!(matches!(contents.items[3].account, Err(Skip::NotAnAccount(_))));

    let aegis = br#"{"version":1,"header":{"slots":null,"params":null},"db":{"version":3,"entries":[
        {"type":"yandex","name":"y","issuer":"Yandex","info":{"secret":"GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ","algo":"SHA256","digits":8,"period":30}},
        {"type":"totp","name":"md5","issuer":"Old","info":{"secret":"GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ","algo":"MD5","digits":6,"period":30}},
        {"type":"totp","name":"nine","issuer":"Long","info":{"secret":"GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ","algo":"SHA1","digits":9,"period":30}},
        {"type":"totp","name":"empty","issuer":"None","info":{"secret":"","algo":"SHA1","digits":6,"period":30}},
        {"type":"motp","name":"m","issuer":"Old","info":{"secret":"0123456789abcdef","algo":"MD5","digits":6,"period":10}}]}}"#;
    let contents = read(aegis, None, None).unwrap();
    let reasons: Vec<String> = contents.items.iter().map(|item| item.account.clone().unwrap_err().to_string()).collect();
    assert_eq!(
        reasons,
        [
            "it is a yandex account, which Countersign does not support",
            "it uses the hash MD5, which Countersign does not support",
            "digits must be 6, 7 or 8 (got 9)",
            "it has no secret",
            "it is a motp account, which Countersign does not support"
        ]
    );
}

#[test]
fn damaged_files_get_errors_that_name_the_file_and_never_a_secret() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.json");
    // A secret where a number belongs: serde would quote it in its message.
    std::fs::write(&path, br#"{"version":1,"header":{"slots":null,"params":null},"db":{"version":3,"entries":[{"type":"totp","name":"a","issuer":"b","info":{"secret":"SECRETSECRET","digits":"SECRETSECRET"}}]}}"#).unwrap();
    let error = open(&path, None, None).unwrap_err();
    let message = error.to_string();
    assert!(message.starts_with(&path.display().to_string()), "{message}");
    assert!(!message.contains("SECRETSECRET"), "{message}");
    assert!(message.contains("damaged"), "{message}");

    let truncated = dir.path().join("cut.2fas");
    let bytes = std::fs::read(fixtures().join("2fas-encrypted.2fas")).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    assert_eq!(open(&truncated, None, Some(&password())).unwrap_err().problem, Problem::Unrecognised);
    assert_eq!(open(&truncated, Some(Format::TwoFas), Some(&password())).unwrap_err().problem, Problem::NotFormat(Format::TwoFas));

    let missing = dir.path().join("missing.json");
    assert!(matches!(open(&missing, None, None).unwrap_err().problem, Problem::Io(_)));
    let empty_aegis = br#"{"version":1,"header":{"slots":null,"params":null},"db":{"version":3,"entries":[]}}"#;
    assert_eq!(read(empty_aegis, None, None), Err(Problem::Empty));
}

#[test]
fn absurd_kdf_costs_are_refused_before_any_work() {
    let file = br#"{"version":1,"header":{"slots":[{"type":1,"uuid":"x","key":"00","key_params":{"nonce":"000000000000000000000000","tag":"00000000000000000000000000000000"},"n":1073741824,"r":8,"p":1,"salt":"00"}],"params":{"nonce":"000000000000000000000000","tag":"00000000000000000000000000000000"}},"db":"AAAA"}"#;
    let error = read(file, None, Some(&password())).unwrap_err();
    assert!(matches!(&error, Problem::Damaged(why) if why.contains("scrypt")), "{error}");
    // Every slot costs a full scrypt: a file cannot list dozens.
    let slot = r#"{"type":1,"uuid":"x","key":"00","key_params":{"nonce":"000000000000000000000000","tag":"00000000000000000000000000000000"},"n":32768,"r":8,"p":1,"salt":"00"}"#;
    let many = format!(
        r#"{{"version":1,"header":{{"slots":[{}],"params":{{"nonce":"000000000000000000000000","tag":"00000000000000000000000000000000"}}}},"db":"AAAA"}}"#,
        [slot; 5].join(",")
    );
    let error = read(many.as_bytes(), None, Some(&password())).unwrap_err();
    assert!(matches!(&error, Problem::Damaged(why) if why.contains("5 password slots")), "{error}");
    let mut andotp = 4_000_000_000u32.to_be_bytes().to_vec();
    andotp.extend([0; 60]);
    assert_eq!(read(&andotp, Some(Format::AndOtp), Some(&password())), Err(Problem::WrongPassword));
}

#[test]
fn preview_marks_vault_and_in_file_duplicates() {
    let vault_entries = sample()[..1].to_vec();
    let text = format!(
        "{}\n{}\n{}\nnot a uri\n",
        uri::format(&sample()[0].account),
        uri::format(&sample()[1].account),
        uri::format(&sample()[1].account)
    );
    let contents = read(text.as_bytes(), None, None).unwrap();
    let plan = preview(&contents, &vault_entries);
    assert_eq!(plan[0], Plan::InVault(vault_entries[0].id.clone()));
    assert_eq!(plan[1], Plan::New);
    assert_eq!(plan[2], Plan::RepeatedInFile);
    assert!(matches!(plan[3], Plan::Skipped(Skip::Uri(_))));
}

#[test]
fn exports_refuse_what_they_cannot_do() {
    assert_eq!(export(ExportFormat::UriList, &[], None).unwrap_err(), ExportError::Empty);
    assert_eq!(
        export(ExportFormat::AegisEncrypted, &sample(), None).unwrap_err(),
        ExportError::PasswordNeeded(ExportFormat::AegisEncrypted)
    );
    assert_eq!(
        export(ExportFormat::Countersign, &sample(), Some(&Password::new(String::new()))).unwrap_err(),
        ExportError::PasswordNeeded(ExportFormat::Countersign)
    );
    let steam_only = sample()[3..4].to_vec();
    assert_eq!(export(ExportFormat::GoogleQr, &steam_only, None).unwrap_err(), ExportError::NothingFits(ExportFormat::GoogleQr));
}

#[test]
fn saved_exports_are_private_and_complete() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("uris.txt");
    let export = export(ExportFormat::UriList, &sample(), None).unwrap();
    assert_eq!(save(&export, &out).unwrap(), std::slice::from_ref(&out));
    assert_eq!(std::fs::read(&out).unwrap(), *export.files[0].bytes);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&out).unwrap().permissions().mode() & 0o777, 0o600);
    }
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "no temp file left behind");
    assert!(!format!("{export:?}").contains("secret="), "Debug never shows the bytes");
}

#[test]
fn an_export_to_a_path_says_what_it_wrote_and_left_out() {
    let dir = tempfile::tempdir().unwrap();
    let saved = export_to(&dir.path().join("codes"), ExportFormat::GoogleQr, &sample(), None).unwrap();
    assert_eq!((saved.exported, saved.of), (sample().len() - saved.left_out.len(), sample().len()));
    assert!(!saved.left_out.is_empty(), "the Steam account cannot go to Google");
    assert!(!saved.files.is_empty() && saved.files.iter().all(|file| file.starts_with(dir.path().join("codes")) && file.is_file()));
    let blocked = dir.path().join("not-a-folder");
    std::fs::write(&blocked, b"x").unwrap();
    assert!(matches!(export_to(&blocked.join("uris.txt"), ExportFormat::UriList, &sample(), None), Err(ExportError::Save(_))));
    assert_eq!(export_to(&dir.path().join("none.txt"), ExportFormat::UriList, &[], None), Err(ExportError::Empty));
}

/// A `--reveal` export into a shared folder: a temp name planted there as a
/// symlink (or as a file readable by all) must not receive the secrets.
#[cfg(unix)]
#[test]
fn a_planted_temp_file_or_symlink_never_receives_an_export() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("uris.txt");
    let victim = dir.path().join("attacker-readable");
    std::fs::write(&victim, b"").unwrap();
    std::os::unix::fs::symlink(&victim, dir.path().join(".uris.txt.tmp")).unwrap();
    let export = export(ExportFormat::UriList, &sample(), None).unwrap();
    save(&export, &out).unwrap();
    assert_eq!(std::fs::read(&victim).unwrap(), b"", "nothing was written through the symlink");
    assert!(!std::fs::symlink_metadata(&out).unwrap().file_type().is_symlink());
    assert_eq!(std::fs::read(&out).unwrap(), *export.files[0].bytes);

    std::fs::write(dir.path().join(".uris.txt.tmp"), b"").unwrap();
    std::fs::set_permissions(dir.path().join(".uris.txt.tmp"), std::fs::Permissions::from_mode(0o666)).unwrap();
    save(&export, &out).unwrap();
    assert_eq!(std::fs::metadata(&out).unwrap().permissions().mode() & 0o777, 0o600);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn no_input_makes_a_reader_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400), format in proptest::sample::select(Format::ALL.to_vec())) {
        let _ = detect(&bytes);
        let _ = read(&bytes, None, None);
        if format != Format::Countersign && format != Format::Aegis {
            let _ = read(&bytes, Some(format), Some(&password()));
        }
    }

    #[test]
    fn no_json_shape_makes_a_reader_panic(json in "\\{\"(version|header|db|services|items|tokens|tokenOrder|schemaVersion|servicesEncrypted)\": ?(null|1|\"a:b:c\"|\\[\\]|\\{\\}|\\[\\{\"secret\": ?\"A\", ?\"type\": ?\"x\"\\}\\])(, ?\"(header|db|slots|tokenOrder|schemaVersion)\": ?(null|\\{\"slots\": ?null\\}|\\[\\]|3))?\\}") {
        let _ = read(json.as_bytes(), None, Some(&password()));
    }
}
