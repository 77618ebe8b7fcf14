//! Users' phone numbers for the phone methods of the enrollment page: the
//! authentication phone (texts and calls) and the office phone (calls,
//! with an optional extension). Parsed and validated with the phonenumber
//! crate (libphonenumber's metadata) and kept in E.164 (`+41446681800`).

use std::str::FromStr;

use phonenumber::Mode;
use phonenumber::country::Id;

/// Which of a user's phones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Texts with a code, or calls answered with #.
    Authentication,
    /// Calls answered with #; may have an extension.
    Office,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Authentication => "authentication",
            Kind::Office => "office",
        }
    }
}

impl FromStr for Kind {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "authentication" => Ok(Kind::Authentication),
            "office" => Ok(Kind::Office),
            _ => Err(format!("a phone is \"authentication\" or \"office\", not {:?}", crate::push::printable(text))),
        }
    }
}

/// A user's phone, as stored and shown.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Phone {
    pub kind: Kind,
    /// E.164: `+` and up to 15 digits.
    pub number: String,
    /// Digits dialled after the call is answered (office phones only).
    pub extension: Option<String>,
}

/// Reads `given` as typed: international (`+41 44 668 18 00`), or national
/// for `country` (ISO 3166 code, `CH`). An extension comes from
/// `extension`, or from the number itself (`… ext. 123`), and only for an
/// office phone. The error says what is wrong, for the page and the API.
pub fn parse(kind: Kind, given: &str, country: Option<&str>, extension: Option<&str>) -> Result<Phone, String> {
    let given = given.trim();
    if given.is_empty() {
        return Err("enter a phone number".into());
    }
    if given.len() > 64 {
        return Err("a phone number is at most 64 characters".into());
    }
    let country = match country.map(str::trim).filter(|c| !c.is_empty()) {
        Some(code) => Some(
            Id::from_str(&code.to_ascii_uppercase())
                .map_err(|_| format!("{:?} is not a country code (like CH or US)", crate::push::printable(code)))?,
        ),
        None => None,
    };
    let number = phonenumber::parse(country, given).map_err(|_| match country {
        Some(_) => format!("{:?} is not a phone number", crate::push::printable(given)),
        None => format!(
            "{:?} is not a phone number: start it with + and the country code, or choose the country",
            crate::push::printable(given)
        ),
    })?;
    if !number.is_valid() {
        return Err(format!("{} is not a valid phone number", number.format().mode(Mode::International)));
    }
    let extension =
        extension.map(str::trim).filter(|e| !e.is_empty()).map(str::to_owned).or_else(|| number.extension().map(ToString::to_string));
    if let Some(extension) = &extension {
        if kind != Kind::Office {
            return Err("only an office phone has an extension".into());
        }
        if extension.is_empty() || extension.len() > 10 || !extension.bytes().all(|b| b.is_ascii_digit()) {
            return Err("an extension is 1 to 10 digits".into());
        }
    }
    Ok(Phone { kind, number: number.format().mode(Mode::E164).to_string(), extension })
}

/// Every country or region libphonenumber knows (ISO 3166 code and
/// calling code), by code: the enrollment page's country list.
pub fn countries() -> Vec<(String, u16)> {
    let mut countries: Vec<(String, u16)> = phonenumber::metadata::DATABASE
        .iter()
        .filter(|metadata| metadata.id().len() == 2 && metadata.id().bytes().all(|b| b.is_ascii_uppercase()))
        .map(|metadata| (metadata.id().to_owned(), metadata.country_code()))
        .collect();
    countries.sort();
    countries.dedup();
    countries
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_country_list_has_every_region_once_with_its_calling_code() {
        let countries = countries();
        assert!(countries.len() > 200, "{}", countries.len());
        assert!(countries.contains(&("CH".into(), 41)) && countries.contains(&("US".into(), 1)) && countries.contains(&("GB".into(), 44)));
        assert!(countries.windows(2).all(|pair| pair[0].0 < pair[1].0), "sorted, each once");
    }

    #[test]
    fn numbers_are_kept_in_e164_however_they_are_typed() {
        for (given, country) in
            [("+41 44 668 18 00", None), ("044 668 18 00", Some("CH")), ("0446681800", Some("ch")), ("+41446681800", Some("US"))]
        {
            assert_eq!(parse(Kind::Authentication, given, country, None).unwrap().number, "+41446681800", "{given} {country:?}");
        }
        assert_eq!(parse(Kind::Authentication, "(201) 555-0123", Some("US"), None).unwrap().number, "+12015550123");
        assert_eq!(parse(Kind::Authentication, "tel:+44-20-7946-0958", None, None).unwrap().number, "+442079460958");
    }

    #[test]
    fn what_is_not_a_valid_number_is_said_plainly() {
        let error = |given: &str, country: Option<&str>| parse(Kind::Authentication, given, country, None).unwrap_err();
        assert_eq!(error("", None), "enter a phone number");
        assert!(error("044 668 18 00", None).contains("start it with + and the country code"));
        assert!(error("hello", Some("CH")).contains("is not a phone number"));
        assert!(error("+41 12", None).contains("not"), "too short");
        assert!(error("+41 44 668 18 00", Some("XX")).contains("not a country code"));
        assert!(error(&"1".repeat(65), None).contains("at most 64"));
        // Control characters never reach the message as they are.
        assert!(!error("\u{1b}[2J", Some("CH")).contains('\u{1b}'));
    }

    #[test]
    fn only_an_office_phone_has_an_extension_of_digits() {
        let office = parse(Kind::Office, "+1 201 555 0123", None, Some("4711")).unwrap();
        assert_eq!((office.number.as_str(), office.extension.as_deref()), ("+12015550123", Some("4711")));
        let typed = parse(Kind::Office, "+1 201 555 0123 ext. 42", None, None).unwrap();
        assert_eq!(typed.extension.as_deref(), Some("42"));
        assert!(parse(Kind::Authentication, "+1 201 555 0123", None, Some("4711")).unwrap_err().contains("only an office phone"));
        assert!(parse(Kind::Office, "+1 201 555 0123", None, Some("12a")).unwrap_err().contains("1 to 10 digits"));
        assert_eq!(parse(Kind::Office, "+1 201 555 0123", None, Some("  ")).unwrap().extension, None);
    }

    #[test]
    fn kinds_read_and_write_the_same_words() {
        for kind in [Kind::Authentication, Kind::Office] {
            assert_eq!(kind.as_str().parse::<Kind>().unwrap(), kind);
            assert_eq!(serde_json::to_string(&kind).unwrap(), format!("\"{}\"", kind.as_str()));
        }
        assert!("mobile".parse::<Kind>().is_err());
    }
}
