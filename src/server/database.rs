//! Which database the server keeps its data in: a SQLite file (the embedded
//! default, one process) or PostgreSQL (any number of instances sharing it).
//!
//! `database` is either a path, or a `postgres://` / `postgresql://` URL.
//! Anything else with a scheme is refused rather than taken as a file name
//! (`postgres:/x` or `mysql://…` once made a folder named `postgres:`).
//! PostgreSQL's URL takes libpq's options, among them `sslmode`
//! (`require`, `verify-ca`, `verify-full`) and `sslrootcert` for TLS.
//! The URL's password is never shown: [`Database`]'s `Display` and `Debug`
//! replace it with `***`.

use std::path::PathBuf;

use serde::{Deserialize, Deserializer};

#[derive(Clone, PartialEq, Eq)]
pub enum Database {
    Sqlite(PathBuf),
    /// The URL as given (with its password, if any).
    Postgres(String),
}

/// Why a `database` setting was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("database is empty: give a SQLite file's path or a postgres:// URL")]
    Empty,
    #[error("database {0:?} is neither a SQLite file's path nor a postgres:// URL")]
    UnknownScheme(String),
    #[error("database: the PostgreSQL URL is not valid: {0}")]
    BadUrl(String),
}

impl std::str::FromStr for Database {
    type Err = Refused;

    fn from_str(text: &str) -> Result<Database, Refused> {
        if text.trim().is_empty() {
            return Err(Refused::Empty);
        }
        let lower = text.to_ascii_lowercase();
        if lower.starts_with("postgres://") || lower.starts_with("postgresql://") {
            // Parsed now, so a typo is a start-up error, not a connect error later.
            let _: sqlx::postgres::PgConnectOptions =
                text.parse().map_err(|e: sqlx::Error| Refused::BadUrl(redact_in(&e.to_string(), text)))?;
            return Ok(Database::Postgres(text.to_owned()));
        }
        // A scheme (letters, then ':'), which a path of ours never starts with:
        // `sqlite:`, `mysql://`, `postgres:/x`. A Windows drive (`C:\`) is one letter.
        if let Some((scheme, _)) = text.split_once(':')
            && scheme.len() > 1
            && scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+.-".contains(c))
        {
            return Err(Refused::UnknownScheme(redact(text)));
        }
        Ok(Database::Sqlite(PathBuf::from(text)))
    }
}

impl<'de> Deserialize<'de> for Database {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Database, D::Error> {
        String::deserialize(deserializer)?.parse().map_err(serde::de::Error::custom)
    }
}

impl Database {
    pub fn is_postgres(&self) -> bool {
        matches!(self, Database::Postgres(_))
    }
}

/// `scheme://user:***@host/...`: the URL without its password.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    // The authority ends at the first '/', '?' or '#'; its user part at the last '@'.
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let Some((user, host)) = authority.rsplit_once('@') else { return url.to_owned() };
    let user = match user.split_once(':') {
        Some((name, _)) => format!("{name}:***"),
        None => user.to_owned(),
    };
    // A `password=` option in the query is hidden too.
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let query: Vec<String> = query
                .split('&')
                .map(|pair| if pair.to_ascii_lowercase().starts_with("password=") { "password=***".to_owned() } else { pair.to_owned() })
                .collect();
            format!("{path}?{}", query.join("&"))
        }
        None => tail.to_owned(),
    };
    format!("{scheme}://{user}@{host}{tail}")
}

/// `text` with the password of `url` hidden wherever it appears.
fn redact_in(text: &str, url: &str) -> String {
    match url.split_once("://").and_then(|(_, rest)| rest.split_once('@')).and_then(|(user, _)| user.split_once(':')) {
        Some((_, password)) if !password.is_empty() => text.replace(password, "***"),
        _ => text.to_owned(),
    }
}

impl std::fmt::Display for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Database::Sqlite(path) => write!(f, "{}", path.display()),
            Database::Postgres(url) => f.write_str(&redact(url)),
        }
    }
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_is_sqlite_and_a_postgres_url_is_postgres() {
        assert_eq!("data/server.sqlite3".parse(), Ok(Database::Sqlite("data/server.sqlite3".into())));
        assert_eq!("/var/lib/x.db".parse(), Ok(Database::Sqlite("/var/lib/x.db".into())));
        for url in ["postgres://cs@127.0.0.1:5432/cs", "postgresql://cs@db.example/cs?sslmode=verify-full", "POSTGRES://h/db"] {
            assert_eq!(url.parse(), Ok(Database::Postgres(url.into())), "{url}");
        }
    }

    #[test]
    fn what_is_neither_is_refused_instead_of_becoming_a_folder() {
        for text in ["postgres:/x", "sqlite://file.db", "mysql://root@h/db", "postgres+tls://h/db"] {
            assert!(matches!(text.parse::<Database>(), Err(Refused::UnknownScheme(_))), "{text}");
        }
        assert_eq!("  ".parse::<Database>(), Err(Refused::Empty));
        assert!(matches!("postgres://h:notaport/db".parse::<Database>(), Err(Refused::BadUrl(_))));
    }

    #[test]
    fn the_password_is_never_shown() {
        let database: Database = "postgres://cs:hunter2secret@db.example:5432/cs?sslmode=require&password=other".parse().unwrap();
        for shown in [database.to_string(), format!("{database:?}")] {
            assert!(!shown.contains("hunter2secret") && !shown.contains("other"), "{shown}");
            assert_eq!(shown, "postgres://cs:***@db.example:5432/cs?sslmode=require&password=***");
        }
        let refused = "mysql://root:hunter2secret@h/db".parse::<Database>().unwrap_err().to_string();
        assert!(!refused.contains("hunter2secret"), "{refused}");
        let bad = "postgres://cs:hunter2secret@h:x/db".parse::<Database>().unwrap_err().to_string();
        assert!(!bad.contains("hunter2secret"), "{bad}");
    }
}
