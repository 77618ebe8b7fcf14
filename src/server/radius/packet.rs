//! RADIUS packets (RFC 2865 §3, §5), as much of the format as an
//! Access-Request with a PAP password needs, and Message-Authenticator
//! (RFC 3579 §3.2), which this server requires in every request and puts
//! first in every answer (the BLAST-RADIUS advice, CVE-2024-3596).
//!
//! ```text
//!  0       1       2               4                              20
//! +-------+-------+---------------+------------------------------+----------
//! | Code  |  Id   |    Length     |  Authenticator (16 octets)   | Attributes
//! +-------+-------+---------------+------------------------------+----------
//! Attribute: Type (1 octet), Length (1 octet, counting these two), Value.
//! ```
//!
//! - A request's authenticator is 16 random octets; a response's is
//!   MD5(Code | Id | Length | request authenticator | attributes | secret).
//! - Message-Authenticator (type 80, 16 octets) is HMAC-MD5 keyed with the
//!   shared secret over the whole packet with its own value zeroed (in a
//!   response, with the request's authenticator in the header).
//! - User-Password (type 2) is the password padded with zeros to a multiple
//!   of 16 octets, each block XORed with MD5(secret | previous block), the
//!   first previous block being the request authenticator.
//!
//! MD5 and HMAC come from RustCrypto's `md-5` and `hmac`. The constructions
//! above are written here: the RADIUS crates looked at (`radius` 0.4,
//! `radius-rust` 0.4) neither check nor place a Message-Authenticator, which
//! is the one part this server cannot do without.

use hmac::{KeyInit, Mac};
use md5::{Digest, Md5};
use zeroize::Zeroizing;

type HmacMd5 = hmac::Hmac<Md5>;

pub const ACCESS_REQUEST: u8 = 1;
pub const ACCESS_ACCEPT: u8 = 2;
pub const ACCESS_REJECT: u8 = 3;
pub const ACCESS_CHALLENGE: u8 = 11;

pub const USER_NAME: u8 = 1;
pub const USER_PASSWORD: u8 = 2;
pub const CHAP_PASSWORD: u8 = 3;
pub const NAS_IP_ADDRESS: u8 = 4;
pub const REPLY_MESSAGE: u8 = 18;
pub const STATE: u8 = 24;
pub const CALLING_STATION_ID: u8 = 31;
pub const NAS_IDENTIFIER: u8 = 32;
pub const PROXY_STATE: u8 = 33;
pub const EAP_MESSAGE: u8 = 79;
pub const MESSAGE_AUTHENTICATOR: u8 = 80;

/// The largest packet RFC 2865 allows.
pub const MAX_LENGTH: usize = 4096;
const HEADER: usize = 20;

/// Why a datagram is not a packet this server reads.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Malformed {
    #[error("{0} octets, shorter than a RADIUS header")]
    Short(usize),
    #[error("its length field says {said} octets, but {got} arrived")]
    Length { said: usize, got: usize },
    #[error("an attribute runs past the packet's end or is shorter than 2 octets")]
    Attribute,
    #[error("User-Password is not 16 to 128 octets in blocks of 16")]
    Password,
    #[error("it holds more than one Message-Authenticator, or one of the wrong size")]
    TwoAuthenticators,
}

/// A decoded packet; attributes in their order, values as sent.
#[derive(Clone, PartialEq, Eq)]
pub struct Packet {
    pub code: u8,
    pub identifier: u8,
    pub authenticator: [u8; 16],
    pub attributes: Vec<(u8, Vec<u8>)>,
}

/// Codes and sizes only: a User-Password's value never reaches a log.
impl std::fmt::Debug for Packet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let attributes: Vec<(u8, usize)> = self.attributes.iter().map(|(kind, value)| (*kind, value.len())).collect();
        f.debug_struct("Packet")
            .field("code", &self.code)
            .field("identifier", &self.identifier)
            .field("attributes (type, octets)", &attributes)
            .finish_non_exhaustive()
    }
}

impl Packet {
    /// Reads a datagram. Octets past the length field are padding and
    /// ignored (RFC 2865 §3); a datagram shorter than it is refused.
    pub fn parse(datagram: &[u8]) -> Result<Packet, Malformed> {
        if datagram.len() < HEADER {
            return Err(Malformed::Short(datagram.len()));
        }
        let said = usize::from(u16::from_be_bytes([datagram[2], datagram[3]]));
        if !(HEADER..=MAX_LENGTH).contains(&said) || said > datagram.len() {
            return Err(Malformed::Length { said, got: datagram.len() });
        }
        let mut attributes = Vec::new();
        let mut rest = &datagram[HEADER..said];
        while !rest.is_empty() {
            let [kind, length, ..] = *rest else { return Err(Malformed::Attribute) };
            let length = usize::from(length);
            if length < 2 || length > rest.len() {
                return Err(Malformed::Attribute);
            }
            attributes.push((kind, rest[2..length].to_vec()));
            rest = &rest[length..];
        }
        let mut authenticator = [0u8; 16];
        authenticator.copy_from_slice(&datagram[4..HEADER]);
        Ok(Packet { code: datagram[0], identifier: datagram[1], authenticator, attributes })
    }

    /// The first value of attribute `kind`.
    pub fn get(&self, kind: u8) -> Option<&[u8]> {
        self.attributes.iter().find(|(k, _)| *k == kind).map(|(_, value)| value.as_slice())
    }

    /// The first value of `kind` as text (invalid UTF-8 replaced).
    pub fn text(&self, kind: u8) -> Option<String> {
        self.get(kind).map(|value| String::from_utf8_lossy(value).into_owned())
    }

    /// The clear password of a PAP request, trailing zero padding removed.
    pub fn password(&self, secret: &[u8]) -> Result<Option<Zeroizing<Vec<u8>>>, Malformed> {
        let Some(hidden) = self.get(USER_PASSWORD) else { return Ok(None) };
        if hidden.is_empty() || hidden.len() > 128 || !hidden.len().is_multiple_of(16) {
            return Err(Malformed::Password);
        }
        let mut clear = Zeroizing::new(Vec::with_capacity(hidden.len()));
        let mut previous: &[u8] = &self.authenticator;
        for block in hidden.chunks(16) {
            let pad = Md5::new().chain_update(secret).chain_update(previous).finalize();
            clear.extend(block.iter().zip(pad.iter()).map(|(c, p)| c ^ p));
            previous = block;
        }
        while clear.last() == Some(&0) {
            clear.pop();
        }
        Ok(Some(clear))
    }
}

/// Whether `datagram` (a request) carries exactly one Message-Authenticator
/// and it is right for `secret`. Compared in constant time.
pub fn message_authenticator_valid(datagram: &[u8], packet: &Packet, secret: &[u8]) -> Result<bool, Malformed> {
    let Some(offset) = authenticator_offset(datagram, packet)? else { return Ok(false) };
    let mut zeroed = datagram[..packet_length(datagram)].to_vec();
    zeroed[offset..offset + 16].fill(0);
    let mut mac = HmacMd5::new_from_slice(secret).map_err(|_| Malformed::Attribute)?;
    mac.update(&zeroed);
    Ok(mac.verify_slice(&datagram[offset..offset + 16]).is_ok())
}

fn packet_length(datagram: &[u8]) -> usize {
    usize::from(u16::from_be_bytes([datagram[2], datagram[3]]))
}

/// Where the one Message-Authenticator's value starts, if there is one.
fn authenticator_offset(datagram: &[u8], packet: &Packet) -> Result<Option<usize>, Malformed> {
    let count = packet.attributes.iter().filter(|(kind, _)| *kind == MESSAGE_AUTHENTICATOR).count();
    if count == 0 {
        return Ok(None);
    }
    if count > 1 || packet.get(MESSAGE_AUTHENTICATOR).is_some_and(|value| value.len() != 16) {
        return Err(Malformed::TwoAuthenticators);
    }
    let mut offset = HEADER;
    for (kind, value) in &packet.attributes {
        if *kind == MESSAGE_AUTHENTICATOR {
            return Ok(Some(offset + 2));
        }
        offset += 2 + value.len();
    }
    debug_assert!(datagram.len() >= offset);
    Ok(None)
}

/// Encodes attributes, refusing values over 253 octets (cut to fit: only
/// Reply-Message text is ever long).
fn encode_attributes(attributes: &[(u8, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (kind, value) in attributes {
        let value = &value[..value.len().min(253)];
        out.push(*kind);
        out.push(u8::try_from(value.len() + 2).unwrap_or(u8::MAX));
        out.extend_from_slice(value);
    }
    out
}

/// An answer to `request`: Message-Authenticator first, then `attributes`,
/// signed with the response authenticator.
pub fn response(code: u8, request: &Packet, attributes: &[(u8, &[u8])], secret: &[u8]) -> Vec<u8> {
    let mut all: Vec<(u8, &[u8])> = vec![(MESSAGE_AUTHENTICATOR, &[0u8; 16])];
    all.extend_from_slice(attributes);
    let mut packet = header(code, request.identifier, &request.authenticator, &encode_attributes(&all));
    sign_message_authenticator(&mut packet, secret);
    let digest = Md5::new().chain_update(&packet).chain_update(secret).finalize();
    packet[4..HEADER].copy_from_slice(&digest);
    packet
}

fn header(code: u8, identifier: u8, authenticator: &[u8; 16], attributes: &[u8]) -> Vec<u8> {
    let length = u16::try_from(HEADER + attributes.len()).unwrap_or(u16::MAX);
    let mut packet = Vec::with_capacity(HEADER + attributes.len());
    packet.push(code);
    packet.push(identifier);
    packet.extend_from_slice(&length.to_be_bytes());
    packet.extend_from_slice(authenticator);
    packet.extend_from_slice(attributes);
    packet
}

/// Fills the first attribute's 16 octets (a zeroed Message-Authenticator)
/// with HMAC-MD5 over the packet as it stands.
fn sign_message_authenticator(packet: &mut [u8], secret: &[u8]) {
    let Ok(mut mac) = HmacMd5::new_from_slice(secret) else { return };
    mac.update(packet);
    let value = mac.finalize().into_bytes();
    packet[HEADER + 2..HEADER + 18].copy_from_slice(&value);
}

/// A client's Access-Request (the benchmark's and the tests' own client):
/// Message-Authenticator first, the password hidden, `authenticator` being
/// 16 random octets the caller drew.
pub fn access_request(
    identifier: u8,
    authenticator: [u8; 16],
    user: &str,
    password: &[u8],
    attributes: &[(u8, &[u8])],
    secret: &[u8],
) -> Vec<u8> {
    let mut padded = Zeroizing::new(password.to_vec());
    padded.resize(password.len().div_ceil(16).max(1) * 16, 0);
    let mut hidden = Vec::with_capacity(padded.len());
    let mut previous = authenticator.to_vec();
    for block in padded.chunks(16) {
        let pad = Md5::new().chain_update(secret).chain_update(&previous).finalize();
        let cipher: Vec<u8> = block.iter().zip(pad.iter()).map(|(c, p)| c ^ p).collect();
        hidden.extend_from_slice(&cipher);
        previous = cipher;
    }
    let mut all: Vec<(u8, &[u8])> = vec![(MESSAGE_AUTHENTICATOR, &[0u8; 16]), (USER_NAME, user.as_bytes()), (USER_PASSWORD, &hidden)];
    all.extend_from_slice(attributes);
    let mut packet = header(ACCESS_REQUEST, identifier, &authenticator, &encode_attributes(&all));
    sign_message_authenticator(&mut packet, secret);
    packet
}

/// Whether `answer` is a genuine answer to `request` under `secret`: its
/// response authenticator and its Message-Authenticator both check.
pub fn response_valid(answer: &[u8], request: &Packet, secret: &[u8]) -> bool {
    let Ok(packet) = Packet::parse(answer) else { return false };
    if packet.identifier != request.identifier {
        return false;
    }
    let length = packet_length(answer);
    let mut with_request = answer[..length].to_vec();
    with_request[4..HEADER].copy_from_slice(&request.authenticator);
    let expected = Md5::new().chain_update(&with_request).chain_update(secret).finalize();
    if !bool::from(subtle::ConstantTimeEq::ct_eq(&expected[..], &answer[4..HEADER])) {
        return false;
    }
    matches!(message_authenticator_valid(&with_request, &packet, secret), Ok(true))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(text: &str) -> Vec<u8> {
        (0..text.len()).step_by(2).map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap()).collect()
    }

    /// RFC 2865 §7.1: "nemo" with password "arctangent", secret "xyzzy5461",
    /// and the Access-Accept the RFC shows for it.
    #[test]
    fn the_rfc_example_reveals_its_password_and_its_accept_is_signed_as_the_rfc_shows() {
        let request = hex(concat!(
            "010000380f403f9473978057bd83d5cb98f4227a",
            "01066e656d6f",
            "02120dbe708d93d413ce3196e43f782a0aee",
            "0406c0a80110",
            "050600000003",
        ));
        let packet = Packet::parse(&request).unwrap();
        assert_eq!(packet.text(USER_NAME).as_deref(), Some("nemo"));
        assert_eq!(packet.password(b"xyzzy5461").unwrap().unwrap().as_slice(), b"arctangent");
        assert_ne!(packet.password(b"xyzzy5462").unwrap().unwrap().as_slice(), b"arctangent");
        // Without a Message-Authenticator the request is not valid here.
        assert_eq!(message_authenticator_valid(&request, &packet, b"xyzzy5461"), Ok(false));
        let accept = hex(concat!("0200002686fe220e7624ba2a1005f6bf9b55e0b2", "060600000001", "0f0600000000", "0e06c0a80103",));
        let mut with_request = accept.clone();
        with_request[4..20].copy_from_slice(&packet.authenticator);
        let digest = Md5::new().chain_update(&with_request).chain_update(b"xyzzy5461").finalize();
        assert_eq!(&digest[..], &accept[4..20]);
    }

    #[test]
    fn a_request_made_here_checks_and_its_answer_checks_but_not_under_another_secret() {
        let secret = b"a long shared secret";
        let datagram = access_request(7, [9; 16], "alice", b"123456", &[(NAS_IDENTIFIER, b"vpn")], secret);
        let packet = Packet::parse(&datagram).unwrap();
        assert_eq!(message_authenticator_valid(&datagram, &packet, secret), Ok(true));
        assert_eq!(message_authenticator_valid(&datagram, &packet, b"another secret!!"), Ok(false));
        assert_eq!(packet.password(secret).unwrap().unwrap().as_slice(), b"123456");
        assert_eq!(packet.text(NAS_IDENTIFIER).as_deref(), Some("vpn"));
        let answer = response(ACCESS_ACCEPT, &packet, &[(REPLY_MESSAGE, b"yes")], secret);
        assert_eq!(answer[0], ACCESS_ACCEPT);
        assert_eq!(answer[20], MESSAGE_AUTHENTICATOR, "Message-Authenticator comes first");
        assert!(response_valid(&answer, &packet, secret));
        assert!(!response_valid(&answer, &packet, b"another secret!!"));
        let mut tampered = answer.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert!(!response_valid(&tampered, &packet, secret));
    }

    #[test]
    fn a_changed_octet_breaks_the_message_authenticator() {
        let secret = b"a long shared secret";
        let mut datagram = access_request(1, [3; 16], "alice", b"push", &[], secret);
        let last = datagram.len() - 1;
        datagram[last] ^= 0x20;
        let packet = Packet::parse(&datagram).unwrap();
        assert_eq!(message_authenticator_valid(&datagram, &packet, secret), Ok(false));
    }

    #[test]
    fn long_passwords_take_several_blocks_and_empty_ones_one() {
        let secret = b"a long shared secret";
        for password in [&b""[..], b"x", b"exactly sixteen!", b"a password of more than thirty-two octets here"] {
            let datagram = access_request(1, [5; 16], "bob", password, &[], secret);
            let packet = Packet::parse(&datagram).unwrap();
            assert_eq!(packet.password(secret).unwrap().unwrap().as_slice(), password);
        }
    }

    #[test]
    fn broken_datagrams_are_refused_not_read_past_their_end() {
        assert_eq!(Packet::parse(&[1, 2, 3]), Err(Malformed::Short(3)));
        let good = access_request(1, [1; 16], "carol", b"push", &[], b"s");
        let mut long = good.clone();
        long[2..4].copy_from_slice(&u16::try_from(good.len() + 1).unwrap().to_be_bytes());
        assert!(matches!(Packet::parse(&long), Err(Malformed::Length { .. })));
        let mut zero_attribute = good.clone();
        zero_attribute[21] = 0;
        assert_eq!(Packet::parse(&zero_attribute), Err(Malformed::Attribute));
        let mut padded = good.clone();
        padded.extend_from_slice(&[0xff; 10]);
        assert_eq!(Packet::parse(&padded).unwrap(), Packet::parse(&good).unwrap());
        let mut two = good.clone();
        two.extend_from_slice(&[MESSAGE_AUTHENTICATOR, 18]);
        two.extend_from_slice(&[0; 16]);
        let length = u16::try_from(two.len()).unwrap().to_be_bytes();
        two[2..4].copy_from_slice(&length);
        let packet = Packet::parse(&two).unwrap();
        assert_eq!(message_authenticator_valid(&two, &packet, b"s"), Err(Malformed::TwoAuthenticators));
    }

    #[test]
    fn debug_shows_no_attribute_value() {
        let datagram = access_request(1, [1; 16], "dave", b"hunter22", &[], b"s");
        let text = format!("{:?}", Packet::parse(&datagram).unwrap());
        assert!(!text.contains("dave") && !text.contains("hunter"), "{text}");
    }

    proptest::proptest! {
        #[test]
        fn no_datagram_panics_the_reader(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600)) {
            if let Ok(packet) = Packet::parse(&bytes) {
                let _ = message_authenticator_valid(&bytes, &packet, b"secret");
                let _ = packet.password(b"secret");
            }
        }
    }
}
