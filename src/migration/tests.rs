use super::*;
use crate::uri::{self, Payload};

/// The example export that open decoders document: one TOTP account,
/// secret "Hello!\xde\xad\xbe\xef" (Base32 JBSWY3DPEHPK3PXP).
const DOCUMENTED: &str = "otpauth-migration://offline?data=CjEKCkhlbGxvId6tvu8SGEV4YW1wbGU6YWxpY2VAZ29vZ2xlLmNvbRoHRXhhbXBsZTAC";

/// Made with Python's protobuf library from the same .proto (an independent
/// encoder): part 2 of 2 of export -123456, holding a SHA-256 8-digit TOTP,
/// an HOTP at counter 42 and an MD5 account.
const BATCH_PART_2: &str = "CjUKFAABAgMEBQYHCAkKCwwNDg8QERITEg9ib2JAZXhhbXBsZS5jb20aBkdpdEh1YiACKAIwAgo0ChQxMjM0NTY3ODkwMTIzNDU2Nzg5MBIOQWNtZTpob3RwIHVzZXIaBEFjbWUgASgBMAE4KgofCgphYmNkZWZnaGlqEgNvbGQaBkxlZ2FjeSAEKAEwAhABGAIgASjAu/j///////8B";

fn data(uri: &str) -> String {
    match uri::parse(uri) {
        Ok(Payload::GoogleExport { data }) => data,
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_documented_example_decodes_to_its_account() {
    let export = decode(&data(DOCUMENTED)).unwrap();
    assert_eq!(export.batch, Batch { id: 0, index: 0, size: 1 });
    assert_eq!(export.entries.len(), 1);
    let account = export.entries[0].account.as_ref().unwrap();
    assert_eq!((account.issuer.as_str(), account.name.as_str()), ("Example", "alice@google.com"));
    assert_eq!(account.secret.to_base32().as_str(), "JBSWY3DPEHPK3PXP");
    assert_eq!((account.method, account.algorithm, account.digits), (Method::Totp { period: 30 }, Algorithm::Sha1, 6));
    assert_eq!(export.entries[0].title, "Example (alice@google.com)");
}

#[test]
fn every_field_of_an_independent_encoding_is_read_and_bad_entries_say_why() {
    let export = decode(BATCH_PART_2).unwrap();
    assert_eq!(export.batch, Batch { id: -123456, index: 1, size: 2 });
    let [github, hotp, md5] = &export.entries[..] else { panic!("{:?}", export.entries) };
    let github = github.account.as_ref().unwrap();
    assert_eq!((github.issuer.as_str(), github.name.as_str()), ("GitHub", "bob@example.com"));
    assert_eq!(github.secret.as_bytes(), (0u8..20).collect::<Vec<_>>());
    assert_eq!((github.algorithm, github.digits, github.method), (Algorithm::Sha256, 8, Method::Totp { period: 30 }));
    let hotp = hotp.account.as_ref().unwrap();
    assert_eq!((hotp.issuer.as_str(), hotp.name.as_str(), hotp.method), ("Acme", "hotp user", Method::Hotp { counter: 42 }));
    assert_eq!(md5.title, "Legacy (old)");
    assert_eq!(md5.account, Err(EntryError::Algorithm("MD5")));
}

#[test]
fn encoding_round_trips_and_leaves_out_what_google_cannot_hold() {
    let mut sha512 = Account::totp("Zürich Bank", "ä:b", Secret::from_bytes(vec![7; 32]));
    sha512.algorithm = Algorithm::Sha512;
    let mut hotp = Account::totp("", "plain", Secret::from_bytes(vec![1; 10]));
    hotp.method = Method::Hotp { counter: 9 };
    let mut sixty = Account::totp("Slow", "s", Secret::from_bytes(vec![2; 20]));
    sixty.method = Method::Totp { period: 60 };
    let accounts = [sha512.clone(), sixty.clone(), hotp.clone()];
    let (uri, left_out) = encode(&accounts, Batch { id: 77, index: 0, size: 1 });
    assert_eq!(left_out, [&sixty]);
    let export = decode(&data(&uri)).unwrap();
    assert_eq!(export.batch, Batch { id: 77, index: 0, size: 1 });
    let read: Vec<Account> = export.entries.into_iter().map(|e| e.account.unwrap()).collect();
    assert_eq!(read, [sha512, hotp]);
}

#[test]
fn damaged_data_is_a_clear_error() {
    assert_eq!(decode("not base64!"), Err(Error::Base64));
    assert!(matches!(decode("////"), Err(Error::Protobuf(_))));
    assert_eq!(decode(""), Err(Error::Empty));
    // Index 3 of a batch of 2.
    let (uri, _) = encode(&[Account::totp("A", "b", Secret::from_bytes(vec![1; 20]))], Batch { id: 1, index: 3, size: 2 });
    assert_eq!(decode(&data(&uri)), Err(Error::Batch { index: 3, size: 2 }));
    // Every truncation of a valid export is an error or fewer entries, never a panic.
    for end in 0..BATCH_PART_2.len() {
        let _ = decode(&BATCH_PART_2[..end]);
    }
}

#[test]
fn unpadded_urlsafe_and_unescaped_plus_data_still_decode() {
    let (uri, _) = encode(&[Account::totp("A", "b", Secret::from_bytes(vec![0xfb; 21]))], Batch { id: 1, index: 0, size: 1 });
    let standard = data(&uri);
    assert!(standard.contains('+') || standard.contains('/'), "{standard}");
    let expected = decode(&standard).unwrap();
    assert_eq!(decode(standard.trim_end_matches('=')).unwrap(), expected);
    assert_eq!(decode(&standard.replace('+', "-").replace('/', "_")).unwrap(), expected);
    assert_eq!(decode(&standard.replace('+', " ")).unwrap(), expected);
}

#[test]
fn batches_count_parts_once_and_name_the_missing_ones() {
    let account = |n: u8| Account::totp("I", &format!("user{n}"), Secret::from_bytes(vec![n; 20]));
    let part = |index: u32| decode(&data(&encode(&[account(index as u8)], Batch { id: 5, index, size: 3 }).0)).unwrap();
    let mut batches = Batches::default();
    assert!(batches.is_empty() && batches.is_complete());
    assert_eq!(batches.add(part(2)).unwrap().to_string(), "1 of 3 scanned");
    assert_eq!(batches.add(part(0)).unwrap().to_string(), "2 of 3 scanned");
    assert_eq!(batches.add(part(0)).unwrap().to_string(), "2 of 3 scanned");
    assert!(!batches.is_complete());
    assert_eq!(batches.missing(), [Missing { id: 5, ranges: vec![(2, 2)] }]);
    assert_eq!(batches.missing()[0].to_string(), "code 2");
    // A code claiming the same export with another size is refused.
    let odd = decode(&data(&encode(&[account(9)], Batch { id: 5, index: 1, size: 4 }).0)).unwrap();
    assert_eq!(batches.add(odd), Err(Error::Batch { index: 1, size: 4 }));
    let done = batches.add(part(1)).unwrap();
    assert!(done.is_complete() && batches.is_complete() && batches.missing().is_empty());
    let names: Vec<String> = batches.entries().map(|e| e.account.as_ref().unwrap().name.clone()).collect();
    assert_eq!(names, ["user0", "user1", "user2"]);
}

#[test]
fn secrets_stay_out_of_debug_output() {
    let export = decode(&data(DOCUMENTED)).unwrap();
    let text = format!("{export:?}");
    assert!(!text.contains("JBSWY3DP") && !text.contains("72, 101, 108"), "{text}");
}

#[test]
fn a_batch_claiming_too_many_codes_is_refused() {
    let account = Account::totp("A", "b", Secret::from_bytes(vec![1; 20]));
    let claim = |size: u32| decode(&data(&encode(std::slice::from_ref(&account), Batch { id: 1, index: 0, size }).0));
    assert_eq!(claim(2_000_000_000), Err(Error::BatchTooLarge(2_000_000_000)));
    assert_eq!(claim(MAX_BATCH_SIZE + 1), Err(Error::BatchTooLarge(MAX_BATCH_SIZE as i32 + 1)));
    assert_eq!(claim(MAX_BATCH_SIZE).unwrap().batch.size, MAX_BATCH_SIZE);
    let message = claim(2_000_000_000).unwrap_err().to_string();
    assert_eq!(message, "the export says it is split over 2000000000 codes; Google Authenticator never makes more than 1000");
}

#[test]
fn missing_codes_are_ranges_whatever_size_is_claimed() {
    let export = |index: u32, size: u32| Export { batch: Batch { id: 3, index, size }, entries: Vec::new() };
    // Built by hand: decode refuses such a size, and this must not cost
    // memory per code either way.
    let mut batches = Batches::default();
    batches.add(export(2, 2_000_000_000)).unwrap();
    let missing = batches.missing();
    assert_eq!(missing, [Missing { id: 3, ranges: vec![(1, 2), (4, 2_000_000_000)] }]);
    assert_eq!(missing[0].count(), 1_999_999_999);
    assert_eq!(missing[0].to_string(), "codes 1, 2 and 4 to 2000000000");

    let mut batches = Batches::default();
    for index in [1, 5, 6, 9] {
        batches.add(export(index, 12)).unwrap();
    }
    // Scanned: codes 2, 6, 7 and 10 of 12.
    assert_eq!(batches.missing()[0].ranges, [(1, 1), (3, 5), (8, 9), (11, 12)]);
    assert_eq!(batches.missing()[0].to_string(), "codes 1, 3 to 5, 8, 9, 11 and 12");
}
