//! The server's storage: users, one-time activations, devices, sign-ins,
//! used TOTP steps, and what several instances share (who is alive, which
//! devices they hold, rate limits), in SQLite or PostgreSQL through sqlx.
//! Each query is one SQL text for both (`$N` placeholders); the schemas
//! differ only in types, so each has its migrations
//! (`src/server/migrations/sqlite`, `…/postgres`), run at start-up.

use std::path::Path;
use std::str::FromStr;

use sha2::{Digest, Sha256};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};

use zeroize::Zeroizing;

use super::database::Database;
use super::methods::{Enrolled, Method};
use super::phones::{Kind as PhoneKind, Phone};
use super::secrets::{self, SecretBox};
use crate::push::{Keypair, PublicKey, Status};

/// How long an activation code stays valid.
pub const ACTIVATION_SECONDS: i64 = 10 * 60;
/// Wrong codes after which an activation is invalidated.
pub const MAX_FAILURES: i64 = 5;

/// Anything the database can fail on; the API maps it to `internal`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("database: {0}")]
    Sql(#[from] sqlx::Error),
    /// At start: the database did not answer (the URL shown without its password).
    #[error("cannot reach the database {0}: {1}")]
    Unreachable(String, String),
    #[error("migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored data is damaged: {0}")]
    Damaged(String),
    #[error("the operating system's random number generator failed")]
    Random,
}

/// A sign-in row.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Signin {
    pub id: String,
    pub user: String,
    pub app: String,
    pub ip: String,
    pub location: String,
    pub number: Option<u32>,
    pub pin_required: bool,
    pub created_at: i64,
    pub expires_at: i64,
    /// Pending, approved, denied or reported, stored as [`Status::as_str`]
    /// (the SQL below names them so too); expired is derived
    /// ([`Signin::status_at`]).
    pub status: Status,
    /// How it reaches the user; only pushes go to devices.
    #[serde(default)]
    pub method: Method,
}

impl Signin {
    /// The status as seen at `now`: a pending sign-in past its expiry has
    /// expired, but a call nobody answered in time is denied (as a phone
    /// that rings out denies).
    pub fn status_at(&self, now: i64) -> Status {
        match self.status {
            Status::Pending if now >= self.expires_at && self.method == Method::Voice => Status::Denied,
            Status::Pending if now >= self.expires_at => Status::Expired,
            _ => self.status.clone(),
        }
    }
}

/// A device row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    pub user: String,
    /// Verifies its auth and its answers.
    pub key: PublicKey,
    /// Opens receive-only sessions, when registered.
    pub listener: Option<PublicKey>,
}

/// What checking an activation code found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Activation {
    /// The code is right: the user it activates.
    Valid {
        user: String,
        organization: String,
        totp_secret: String,
    },
    Refused(Refused),
}

/// Why an activation code did not activate; the API's `Failure` picks the
/// status for each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    NotFound,
    Expired,
    Used,
    /// A newer code was issued, the user activated a device, or the admin
    /// revoked it.
    Revoked,
    /// Wrong code; `left` more tries before the activation is invalidated.
    WrongCode {
        left: i64,
    },
    TooManyAttempts,
}

/// A device as the admin sees it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DeviceInfo {
    pub id: String,
    pub name: String,
    pub created_at: i64,
    /// Whether it has a listener key (receives while locked).
    pub listener: bool,
}

/// A user as the admin sees it (never their TOTP secret).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct UserInfo {
    pub name: String,
    pub organization: String,
    pub created_at: i64,
    /// Pushes are refused until then ("It wasn't me"); 0 when never blocked.
    pub blocked_until: i64,
    pub devices: i64,
}

/// An app password as the user and the admin see it (never the password,
/// never its hash).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AppPasswordInfo {
    pub id: String,
    pub name: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub last_used_from: Option<String>,
}

/// An activation as the admin sees it (never its code).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ActivationInfo {
    pub id: String,
    pub created_at: i64,
    pub expires_at: i64,
    /// `outstanding`, `used`, `revoked`, `expired` or `too_many_attempts`.
    pub state: String,
}

/// The pool of whichever database the store is on.
#[derive(Clone)]
pub(super) enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs `$body` with `$pool` bound to the store's pool, whichever it is:
/// the SQL text is the same for both (`$N` placeholders, which SQLite
/// takes too; BIGINT for every integer read as `i64`).
macro_rules! with_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        match &$store.pool {
            Pool::Sqlite($pool) => $body,
            Pool::Postgres($pool) => $body,
        }
    };
}

/// Runs one statement on the store's pool: the rows it affected.
macro_rules! execute {
    ($store:expr, $query:expr) => {
        with_pool!($store, pool => $query.execute(pool).await.map(|done| done.rows_affected()))
    };
}

#[derive(Clone)]
pub struct Store {
    pub(super) pool: Pool,
    /// Seals users' TOTP secrets, when `totp_key_file` is set.
    secrets: Option<std::sync::Arc<SecretBox>>,
}

/// `N` random bytes as lower-case hex.
pub fn random_hex<const N: usize>() -> Result<String, Error> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(|_| Error::Random)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

fn hash(code: &str) -> String {
    Sha256::digest(code.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// How long start-up and each request wait for a database connection.
const ACQUIRE_SECONDS: u64 = 5;

impl Store {
    /// Opens `database` with at most `pool_size` connections and runs its
    /// migrations. PostgreSQL's are taken under an advisory lock, so
    /// instances starting at once on an empty database migrate it once.
    pub async fn connect(database: &Database, pool_size: u32) -> Result<Store, Error> {
        let store = match database {
            Database::Sqlite(path) => Store::open(path).await?,
            Database::Postgres(url) => {
                let options: PgConnectOptions = url.parse()?;
                let pool = PgPoolOptions::new()
                    .max_connections(pool_size)
                    .acquire_timeout(std::time::Duration::from_secs(ACQUIRE_SECONDS))
                    .connect_with(options)
                    .await
                    .map_err(|error| Error::Unreachable(database.to_string(), error.to_string()))?;
                sqlx::migrate!("src/server/migrations/postgres").run(&pool).await?;
                let store = Store { pool: Pool::Postgres(pool), secrets: None };
                store.hash_clear_tokens().await?;
                store
            }
        };
        Ok(store)
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self.pool, Pool::Postgres(_))
    }

    /// The PostgreSQL pool, for LISTEN/NOTIFY.
    pub(super) fn postgres(&self) -> Option<&PgPool> {
        match &self.pool {
            Pool::Postgres(pool) => Some(pool),
            Pool::Sqlite(_) => None,
        }
    }

    /// The SQLite pool (tests reach into the file).
    #[cfg(test)]
    pub(super) fn sqlite(&self) -> &SqlitePool {
        match &self.pool {
            Pool::Sqlite(pool) => pool,
            Pool::Postgres(_) => panic!("not a SQLite store"),
        }
    }

    /// Opens (creating) the SQLite file and runs the migrations.
    async fn open(path: &Path) -> Result<Store, Error> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| Error::Damaged(format!("{}: {e}", parent.display())))?;
        }
        // It holds TOTP secrets and API tokens: readable by the server's user
        // only. SQLite gives its -wal and -shm files the same mode.
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            use std::os::unix::fs::PermissionsExt;
            match std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path) {
                Ok(_) => {}
                Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(error) => return Err(Error::Damaged(format!("{}: {error}", path.display()))),
            }
            // A database an earlier version created with the umask (0644).
            let sibling = |suffix: &str| {
                let mut name = path.as_os_str().to_owned();
                name.push(suffix);
                std::path::PathBuf::from(name)
            };
            for file in [path.to_path_buf(), sibling("-wal"), sibling("-shm")] {
                if let Ok(metadata) = std::fs::metadata(&file)
                    && metadata.permissions().mode() & 0o077 != 0
                {
                    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600))
                        .map_err(|e| Error::Damaged(format!("{}: {e}", file.display())))?;
                }
            }
        }
        let options = SqliteConnectOptions::from_str("sqlite://")?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new().max_connections(8).connect_with(options).await?;
        sqlx::migrate!("src/server/migrations/sqlite").run(&pool).await?;
        let store = Store { pool: Pool::Sqlite(pool), secrets: None };
        store.hash_clear_tokens().await?;
        Ok(store)
    }

    /// A consistent copy of the SQLite database in a new file `to` (0600),
    /// taken with `VACUUM INTO` while the server may be running: never a
    /// copy of the live file, whose `-wal` holds recent writes. PostgreSQL
    /// is backed up with its own tools.
    pub async fn backup(&self, to: &Path) -> Result<(), Error> {
        let Pool::Sqlite(pool) = &self.pool else {
            return Err(Error::Damaged("a PostgreSQL database is backed up with pg_dump or base backups, not by the server".into()));
        };
        // An empty file only its owner reads: VACUUM INTO fills it.
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        options.open(to).map_err(|e| Error::Damaged(format!("{}: {e}", to.display())))?;
        let name = to.to_str().ok_or_else(|| Error::Damaged(format!("{}: not a UTF-8 path", to.display())))?;
        if let Err(error) = sqlx::query("VACUUM INTO $1").bind(name).execute(pool).await {
            let _ = std::fs::remove_file(to);
            return Err(error.into());
        }
        Ok(())
    }

    /// Whether the database answers (`/readyz`).
    pub async fn ping(&self) -> Result<(), Error> {
        with_pool!(self, pool => sqlx::query("SELECT 1").execute(pool).await.map(|_| ()))?;
        Ok(())
    }

    /// Seals users' TOTP secrets with `key` from now on, and seals the ones
    /// still in clear.
    pub async fn with_totp_key(mut self, key: &[u8; 32]) -> Result<Store, Error> {
        let sealer = SecretBox::new(key);
        let rows: Vec<(String, String)> =
            with_pool!(self, pool => sqlx::query_as("SELECT name, totp_secret FROM users").fetch_all(pool).await)?;
        for (name, stored) in rows {
            if secrets::is_sealed(&stored) {
                sealer.open(&name, &stored)?;
            } else {
                let sealed = sealer.seal(&name, &stored)?;
                execute!(
                    self,
                    sqlx::query("UPDATE users SET totp_secret = $1 WHERE name = $2 AND totp_secret = $3")
                        .bind(&sealed)
                        .bind(&name)
                        .bind(&stored)
                )?;
            }
        }
        self.secrets = Some(std::sync::Arc::new(sealer));
        Ok(self)
    }

    /// Fails when secrets are sealed but no key was given.
    pub async fn check_secrets_readable(&self) -> Result<(), Error> {
        if self.secrets.is_none() {
            let sealed: i64 = with_pool!(self, pool => sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE totp_secret LIKE 'xc1:%'")
                .fetch_one(pool)
                .await)?;
            if sealed > 0 {
                return Err(Error::Damaged(format!(
                    "{sealed} users' TOTP secrets are sealed: set totp_key_file to the key they were sealed with"
                )));
            }
        }
        Ok(())
    }

    async fn setting(&self, name: &str) -> Result<Option<String>, Error> {
        Ok(with_pool!(self, pool => sqlx::query_scalar("SELECT value FROM server_settings WHERE name = $1")
            .bind(name)
            .fetch_optional(pool)
            .await)?)
    }

    /// The server's signing key, from `path` (see [`super::secrets`]): made
    /// on first start, or moved there from the database where an earlier
    /// version kept it. `create` is false for a systemd credential.
    pub async fn server_key(&self, path: &Path, create: bool) -> Result<Keypair, Error> {
        if create
            && !path.exists()
            && let Some(old) = self.setting("server_key").await?
        {
            let seed = Zeroizing::new(crate::base64::decode(old.as_bytes()).map_err(|_| Error::Damaged("server key".into()))?);
            let seed: Zeroizing<[u8; 32]> = Zeroizing::new(seed.as_slice().try_into().map_err(|_| Error::Damaged("server key".into()))?);
            secrets::write_new(path, &seed).map_err(|e| Error::Damaged(format!("{}: {e}", path.display())))?;
        }
        let seed = secrets::key_file(path, create)?;
        let key = Keypair::from_seed(seed.as_slice()).map_err(|_| Error::Damaged("server key".into()))?;
        // Kept only in the file from now on.
        self.delete_setting("server_key").await?;
        Ok(key)
    }

    /// The signing key every instance on a shared database uses: the first
    /// to start makes it (one row, `INSERT … ON CONFLICT DO NOTHING`, so
    /// two starting at once agree on the winner's), sealed with the TOTP
    /// key when one is set.
    pub async fn shared_server_key(&self) -> Result<Keypair, Error> {
        const NAME: &str = "shared_server_key";
        // Associated data of the sealed key: no user can be named this (names are trimmed).
        const SEALED_AS: &str = " server key";
        let mut seed = Zeroizing::new([0u8; 32]);
        getrandom::fill(seed.as_mut_slice()).map_err(|_| Error::Random)?;
        let encoded = Zeroizing::new(crate::base64::encode(seed.as_slice()));
        let stored = match &self.secrets {
            Some(sealer) => sealer.seal(SEALED_AS, &encoded)?,
            None => encoded.to_string(),
        };
        execute!(
            self,
            sqlx::query("INSERT INTO server_settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING").bind(NAME).bind(&stored)
        )?;
        let stored = self.setting(NAME).await?.ok_or_else(|| Error::Damaged("the shared server key vanished".into()))?;
        let encoded = Zeroizing::new(match &self.secrets {
            Some(sealer) => sealer.open(SEALED_AS, &stored)?,
            None if secrets::is_sealed(&stored) => {
                return Err(Error::Damaged("the shared server key is sealed: set totp_key_file to the key it was sealed with".into()));
            }
            None => stored,
        });
        let seed = Zeroizing::new(crate::base64::decode(encoded.as_bytes()).map_err(|_| Error::Damaged("server key".into()))?);
        Keypair::from_seed(&seed).map_err(|_| Error::Damaged("server key".into()))
    }

    async fn delete_setting(&self, name: &str) -> Result<(), Error> {
        execute!(self, sqlx::query("DELETE FROM server_settings WHERE name = $1").bind(name))?;
        Ok(())
    }

    /// The SHA-256 of API token `name` (`admin_token`, `rp_token`), if one was made.
    pub async fn token_hash(&self, name: &str) -> Result<Option<[u8; 32]>, Error> {
        let Some(hex) = self.setting(&format!("{name}_sha256")).await? else { return Ok(None) };
        let bytes = data_encoding::HEXLOWER.decode(hex.as_bytes()).map_err(|_| Error::Damaged(format!("{name}'s hash")))?;
        Ok(Some(bytes.try_into().map_err(|_| Error::Damaged(format!("{name}'s hash")))?))
    }

    /// Makes a new API token `name`, keeps its hash, and returns it: the
    /// only time it is seen. The one before stops working.
    pub async fn new_token(&self, name: &str) -> Result<String, Error> {
        let token = random_hex::<24>()?;
        self.set_token_hash(name, &token).await?;
        Ok(token)
    }

    async fn set_token_hash(&self, name: &str, token: &str) -> Result<(), Error> {
        let hash = data_encoding::HEXLOWER.encode(&secrets::token_digest(token));
        execute!(
            self,
            sqlx::query(
                "INSERT INTO server_settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET value = excluded.value"
            )
            .bind(format!("{name}_sha256"))
            .bind(&hash)
        )?;
        self.delete_setting(name).await
    }

    /// Tokens an earlier version kept in clear: their hash replaces them.
    async fn hash_clear_tokens(&self) -> Result<(), Error> {
        for name in ["admin_token", "rp_token"] {
            if let Some(token) = self.setting(name).await? {
                self.set_token_hash(name, &token).await?;
            }
        }
        Ok(())
    }

    /// Adds a user with a fresh TOTP secret; false when the name exists.
    pub async fn add_user(&self, name: &str, organization: &str, now: i64) -> Result<bool, Error> {
        let mut secret = [0u8; 20];
        getrandom::fill(&mut secret).map_err(|_| Error::Random)?;
        let secret = Zeroizing::new(data_encoding::BASE32_NOPAD.encode(&secret));
        let secret = match &self.secrets {
            Some(sealer) => sealer.seal(name, &secret)?,
            None => secret.to_string(),
        };
        let added = execute!(
            self,
            sqlx::query(
                "INSERT INTO users (name, organization, totp_secret, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT (name) DO NOTHING",
            )
            .bind(name)
            .bind(organization)
            .bind(&secret)
            .bind(now)
        )?;
        Ok(added == 1)
    }

    pub async fn user_exists(&self, name: &str) -> Result<bool, Error> {
        let found: Option<i64> = with_pool!(self, pool => sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE name = $1").bind(name).fetch_optional(pool).await)?;
        Ok(found.unwrap_or(0) > 0)
    }

    /// A user's organisation, TOTP secret (base32, opened if sealed) and
    /// the end of any block.
    pub async fn user(&self, name: &str) -> Result<Option<(String, String, i64)>, Error> {
        let row: Option<(String, String, i64)> = with_pool!(self, pool => sqlx::query_as("SELECT organization, totp_secret, blocked_until FROM users WHERE name = $1")
                .bind(name)
                .fetch_optional(pool)
                .await)?;
        let Some((organization, stored, blocked_until)) = row else { return Ok(None) };
        let secret = match &self.secrets {
            Some(sealer) => sealer.open(name, &stored)?,
            None if secrets::is_sealed(&stored) => return Err(Error::Damaged("TOTP secrets are sealed: set totp_key_file".into())),
            None => stored,
        };
        Ok(Some((organization, secret, blocked_until)))
    }

    /// Every user with how many devices they have, by name.
    pub async fn users(&self) -> Result<Vec<UserInfo>, Error> {
        let rows: Vec<(String, String, i64, i64, i64)> = with_pool!(self, pool => sqlx::query_as(
            "SELECT u.name, u.organization, u.created_at, u.blocked_until, (SELECT COUNT(*) FROM devices d WHERE d.user_name = u.name) \
             FROM users u ORDER BY u.name"
        )
        .fetch_all(pool)
        .await)?;
        Ok(rows
            .into_iter()
            .map(|(name, organization, created_at, blocked_until, devices)| UserInfo {
                name,
                organization,
                created_at,
                blocked_until,
                devices,
            })
            .collect())
    }

    /// Removes a user with their devices, activations, sign-ins and used
    /// codes; whether there was one. Returns the devices that were removed,
    /// so their open sessions can be closed.
    pub async fn remove_user(&self, name: &str) -> Result<Option<Vec<String>>, Error> {
        with_pool!(self, pool => {
            let mut transaction = pool.begin().await?;
            let devices: Vec<String> =
                sqlx::query_scalar("DELETE FROM devices WHERE user_name = $1 RETURNING id").bind(name).fetch_all(&mut *transaction).await?;
            for table in ["activations", "signins", "totp_used", "app_passwords", "phones"] {
                sqlx::query(&format!("DELETE FROM {table} WHERE user_name = $1")).bind(name).execute(&mut *transaction).await?;
            }
            for device in &devices {
                sqlx::query("DELETE FROM phone_devices WHERE device_id = $1").bind(device).execute(&mut *transaction).await?;
            }
            let removed = sqlx::query("DELETE FROM users WHERE name = $1").bind(name).execute(&mut *transaction).await?.rows_affected();
            transaction.commit().await?;
            Ok((removed == 1).then_some(devices))
        })
    }

    /// Creates a one-time activation: its id and its 12-digit code. Every
    /// older outstanding activation of the user is revoked in the same
    /// transaction: only the newest code activates.
    pub async fn create_activation(&self, user: &str, now: i64) -> Result<(String, String), Error> {
        let id = random_hex::<12>()?;
        let mut bytes = [0u8; 8];
        getrandom::fill(&mut bytes).map_err(|_| Error::Random)?;
        let code = format!("{:012}", u64::from_be_bytes(bytes) % 1_000_000_000_000);
        with_pool!(self, pool => {
            let mut transaction = pool.begin().await?;
            sqlx::query("UPDATE activations SET revoked_at = $1 WHERE user_name = $2 AND used_at IS NULL AND revoked_at IS NULL")
                .bind(now)
                .bind(user)
                .execute(&mut *transaction)
                .await?;
            sqlx::query("INSERT INTO activations (id, user_name, code_hash, expires_at, created_at) VALUES ($1, $2, $3, $4, $5)")
                .bind(&id)
                .bind(user)
                .bind(hash(&code))
                .bind(now + ACTIVATION_SECONDS)
                .bind(now)
                .execute(&mut *transaction)
                .await?;
            transaction.commit().await?;
        });
        Ok((id, code))
    }

    /// Checks a code against activation `id`, counting wrong tries; a right
    /// code marks the activation used (once: a concurrent second use loses).
    pub async fn use_activation(&self, id: &str, code: &str, now: i64) -> Result<Activation, Error> {
        type Row = (String, String, i64, Option<i64>, i64, Option<i64>);
        let row: Option<Row> = with_pool!(self, pool => sqlx::query_as(
            "SELECT user_name, code_hash, expires_at, used_at, failures, revoked_at FROM activations WHERE id = $1"
        )
        .bind(id)
        .fetch_optional(pool)
        .await)?;
        let Some((user, code_hash, expires_at, used_at, failures, revoked_at)) = row else {
            return Ok(Activation::Refused(Refused::NotFound));
        };
        if used_at.is_some() {
            return Ok(Activation::Refused(Refused::Used));
        }
        if revoked_at.is_some() {
            return Ok(Activation::Refused(Refused::Revoked));
        }
        if failures >= MAX_FAILURES {
            return Ok(Activation::Refused(Refused::TooManyAttempts));
        }
        if now >= expires_at {
            return Ok(Activation::Refused(Refused::Expired));
        }
        let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
        if hash(&code) != code_hash {
            // Counted atomically: parallel guesses cannot all see the same count.
            let counted: Option<i64> = with_pool!(self, pool => sqlx::query_scalar(
                "UPDATE activations SET failures = failures + 1 WHERE id = $1 AND failures < $2 AND used_at IS NULL RETURNING failures",
            )
            .bind(id)
            .bind(MAX_FAILURES)
            .fetch_optional(pool)
            .await)?;
            let left = counted.map_or(0, |failures| MAX_FAILURES - failures);
            return Ok(Activation::Refused(if left <= 0 { Refused::TooManyAttempts } else { Refused::WrongCode { left } }));
        }
        // Used once, and with it every other outstanding code of the user is
        // revoked: an older code cannot add a second device afterwards.
        with_pool!(self, pool => {
            let mut transaction = pool.begin().await?;
            let done = sqlx::query("UPDATE activations SET used_at = $1 WHERE id = $2 AND used_at IS NULL AND revoked_at IS NULL")
                .bind(now)
                .bind(id)
                .execute(&mut *transaction)
                .await?;
            if done.rows_affected() != 1 {
                return Ok(Activation::Refused(Refused::Used));
            }
            sqlx::query("UPDATE activations SET revoked_at = $1 WHERE user_name = $2 AND id <> $3 AND used_at IS NULL AND revoked_at IS NULL")
                .bind(now)
                .bind(&user)
                .bind(id)
                .execute(&mut *transaction)
                .await?;
            transaction.commit().await?;
        });
        let (organization, totp_secret, _) =
            self.user(&user).await?.ok_or_else(|| Error::Damaged(format!("activation for a missing user {user}")))?;
        Ok(Activation::Valid { user, organization, totp_secret })
    }

    /// Adds a device with its key and, when the app sent one, its listener key.
    pub async fn add_device(
        &self,
        user: &str,
        key: &PublicKey,
        listener: Option<&PublicKey>,
        name: &str,
        now: i64,
    ) -> Result<String, Error> {
        let id = format!("dev_{}", random_hex::<8>()?);
        execute!(
            self,
            sqlx::query("INSERT INTO devices (id, user_name, public_key, listener_key, name, created_at) VALUES ($1, $2, $3, $4, $5, $6)")
                .bind(&id)
                .bind(user)
                .bind(key.to_base64())
                .bind(listener.map(PublicKey::to_base64))
                .bind(name)
                .bind(now)
        )?;
        Ok(id)
    }

    /// A device: its user, its key, and its listener key if it has one.
    pub async fn device(&self, id: &str) -> Result<Option<Device>, Error> {
        let row: Option<(String, String, Option<String>)> = with_pool!(self, pool => sqlx::query_as("SELECT user_name, public_key, listener_key FROM devices WHERE id = $1")
                .bind(id)
                .fetch_optional(pool)
                .await)?;
        let Some((user, key, listener)) = row else { return Ok(None) };
        let damaged = |what: &str| Error::Damaged(format!("device {id}'s {what}"));
        Ok(Some(Device {
            user,
            key: PublicKey::from_base64(&key).map_err(|_| damaged("key"))?,
            listener: listener.map(|key| PublicKey::from_base64(&key).map_err(|_| damaged("listener key"))).transpose()?,
        }))
    }

    /// Replaces a device's listener key (the device key vouched for it).
    pub async fn set_listener_key(&self, id: &str, listener: &PublicKey) -> Result<bool, Error> {
        let done = execute!(self, sqlx::query("UPDATE devices SET listener_key = $1 WHERE id = $2").bind(listener.to_base64()).bind(id))?;
        Ok(done == 1)
    }

    /// The user's devices, oldest first.
    pub async fn devices(&self, user: &str) -> Result<Vec<DeviceInfo>, Error> {
        let rows: Vec<(String, String, i64, bool)> = with_pool!(self, pool => sqlx::query_as(
            "SELECT id, name, created_at, listener_key IS NOT NULL FROM devices WHERE user_name = $1 ORDER BY created_at, id"
        )
        .bind(user)
        .fetch_all(pool)
        .await)?;
        Ok(rows.into_iter().map(|(id, name, created_at, listener)| DeviceInfo { id, name, created_at, listener }).collect())
    }

    /// Removes a device: it can no longer connect, answer or be pushed to.
    /// Returns whether it existed.
    pub async fn revoke_device(&self, id: &str) -> Result<bool, Error> {
        // Its phones first: a failure leaves the device whole, to revoke again.
        execute!(self, sqlx::query("DELETE FROM phone_devices WHERE device_id = $1").bind(id))?;
        let done = execute!(self, sqlx::query("DELETE FROM devices WHERE id = $1").bind(id))?;
        Ok(done == 1)
    }

    /// Device `device` answers for `number` (E.164) from now on, if it is one
    /// of its user's phones; whether it is.
    pub async fn attach_phone(&self, device: &str, number: &str, now: i64) -> Result<bool, Error> {
        let done = execute!(
            self,
            sqlx::query(
                "INSERT INTO phone_devices (device_id, number, created_at) \
                 SELECT d.id, p.number, $3 FROM devices d JOIN phones p ON p.user_name = d.user_name \
                 WHERE d.id = $1 AND p.number = $2 LIMIT 1 \
                 ON CONFLICT (device_id, number) DO NOTHING",
            )
            .bind(device)
            .bind(number)
            .bind(now)
        )?;
        Ok(done == 1 || self.phone_numbers_of(device).await?.iter().any(|attached| attached == number))
    }

    /// Device `device` no longer answers for `number`; whether it did.
    pub async fn detach_phone(&self, device: &str, number: &str) -> Result<bool, Error> {
        Ok(execute!(self, sqlx::query("DELETE FROM phone_devices WHERE device_id = $1 AND number = $2").bind(device).bind(number))? == 1)
    }

    /// The numbers `device` answers for that are still its user's phones, in order.
    pub async fn phone_numbers_of(&self, device: &str) -> Result<Vec<String>, Error> {
        Ok(with_pool!(self, pool => sqlx::query_scalar(
            "SELECT DISTINCT pd.number FROM phone_devices pd JOIN devices d ON d.id = pd.device_id \
             JOIN phones p ON p.user_name = d.user_name AND p.number = pd.number \
             WHERE pd.device_id = $1 ORDER BY pd.number"
        )
        .bind(device)
        .fetch_all(pool)
        .await)?)
    }

    /// The devices of `user` that answer for `number` and have a session
    /// (either kind) on an instance seen since `alive_since`, with their keys.
    pub async fn phone_devices(&self, user: &str, number: &str, alive_since: i64) -> Result<Vec<(String, PublicKey)>, Error> {
        let rows: Vec<(String, String)> = with_pool!(self, pool => sqlx::query_as(
            "SELECT DISTINCT pd.device_id, d.public_key FROM phone_devices pd JOIN devices d ON d.id = pd.device_id \
             JOIN phones p ON p.user_name = d.user_name AND p.number = pd.number \
             JOIN push_sessions s ON s.device_id = d.id JOIN instances i ON i.id = s.instance_id \
             WHERE d.user_name = $1 AND pd.number = $2 AND i.seen_at >= $3 ORDER BY pd.device_id"
        )
        .bind(user)
        .bind(number)
        .bind(alive_since)
        .fetch_all(pool)
        .await)?;
        rows.into_iter()
            .map(|(id, key)| match PublicKey::from_base64(&key) {
                Ok(key) => Ok((id, key)),
                Err(_) => Err(Error::Damaged(format!("device {id}'s key"))),
            })
            .collect()
    }

    /// The user's activations, newest first, with their state at `now`.
    pub async fn activations(&self, user: &str, now: i64) -> Result<Vec<ActivationInfo>, Error> {
        type Row = (String, i64, i64, Option<i64>, Option<i64>, i64);
        let rows: Vec<Row> = with_pool!(self, pool => sqlx::query_as(
            "SELECT id, created_at, expires_at, used_at, revoked_at, failures FROM activations WHERE user_name = $1 ORDER BY created_at DESC, id"
        )
        .bind(user)
        .fetch_all(pool)
        .await)?;
        Ok(rows
            .into_iter()
            .map(|(id, created_at, expires_at, used, revoked, failures)| {
                let state = if used.is_some() {
                    "used"
                } else if revoked.is_some() {
                    "revoked"
                } else if failures >= MAX_FAILURES {
                    "too_many_attempts"
                } else if now >= expires_at {
                    "expired"
                } else {
                    "outstanding"
                };
                ActivationInfo { id, created_at, expires_at, state: state.into() }
            })
            .collect())
    }

    /// Revokes an unused activation; whether there was one to revoke.
    pub async fn revoke_activation(&self, id: &str, now: i64) -> Result<bool, Error> {
        let done = execute!(
            self,
            sqlx::query("UPDATE activations SET revoked_at = $1 WHERE id = $2 AND used_at IS NULL AND revoked_at IS NULL")
                .bind(now)
                .bind(id)
        )?;
        Ok(done == 1)
    }

    /// Keeps a new app password's hash for `user`, unless they hold
    /// `limit` already (in one transaction: two at once cannot pass it).
    /// Its id, or `None` at the limit (or when the user was removed meanwhile).
    pub async fn add_app_password(&self, user: &str, name: &str, hash: &str, limit: usize, now: i64) -> Result<Option<String>, Error> {
        let id = random_hex::<8>()?;
        with_pool!(self, pool => {
            let mut transaction = pool.begin().await?;
            // Serializes a user's additions (PostgreSQL row lock; SQLite's
            // write transaction already does).
            // A user removed meanwhile gets none (and the row references them).
            if sqlx::query("UPDATE users SET name = name WHERE name = $1").bind(user).execute(&mut *transaction).await?.rows_affected() != 1 {
                return Ok(None);
            }
            let held: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM app_passwords WHERE user_name = $1")
                .bind(user)
                .fetch_one(&mut *transaction)
                .await?;
            if held >= i64::try_from(limit).unwrap_or(i64::MAX) {
                return Ok(None);
            }
            sqlx::query("INSERT INTO app_passwords (id, user_name, name, hash, created_at) VALUES ($1, $2, $3, $4, $5)")
                .bind(&id)
                .bind(user)
                .bind(name)
                .bind(hash)
                .bind(now)
                .execute(&mut *transaction)
                .await?;
            transaction.commit().await?;
            Ok(Some(id.clone()))
        })
    }

    /// A user's app passwords, newest first.
    pub async fn app_passwords(&self, user: &str) -> Result<Vec<AppPasswordInfo>, Error> {
        type Row = (String, String, i64, Option<i64>, Option<String>);
        let rows: Vec<Row> = with_pool!(self, pool => sqlx::query_as(
            "SELECT id, name, created_at, last_used_at, last_used_from FROM app_passwords WHERE user_name = $1 ORDER BY created_at DESC, id",
        )
        .bind(user)
        .fetch_all(pool)
        .await)?;
        Ok(rows
            .into_iter()
            .map(|(id, name, created_at, last_used_at, last_used_from)| AppPasswordInfo {
                id,
                name,
                created_at,
                last_used_at,
                last_used_from,
            })
            .collect())
    }

    /// A user's app passwords' ids and hashes, the last used first.
    pub async fn app_password_hashes(&self, user: &str) -> Result<Vec<(String, String)>, Error> {
        Ok(with_pool!(self, pool => sqlx::query_as(
            "SELECT id, hash FROM app_passwords WHERE user_name = $1 ORDER BY COALESCE(last_used_at, created_at) DESC",
        )
        .bind(user)
        .fetch_all(pool)
        .await)?)
    }

    /// Records that app password `id` worked for a caller at `from`; false
    /// when it was revoked meanwhile.
    pub async fn app_password_used(&self, id: &str, from: &str, now: i64) -> Result<bool, Error> {
        let done = execute!(
            self,
            sqlx::query("UPDATE app_passwords SET last_used_at = $1, last_used_from = $2 WHERE id = $3").bind(now).bind(from).bind(id)
        )?;
        Ok(done == 1)
    }

    /// Revokes app password `id` (of `user` when given); whether there was one.
    pub async fn revoke_app_password(&self, id: &str, user: Option<&str>) -> Result<bool, Error> {
        let done = match user {
            Some(user) => execute!(self, sqlx::query("DELETE FROM app_passwords WHERE id = $1 AND user_name = $2").bind(id).bind(user))?,
            None => execute!(self, sqlx::query("DELETE FROM app_passwords WHERE id = $1").bind(id))?,
        };
        Ok(done == 1)
    }

    /// Sets the user's phone of its kind, replacing the one there was.
    pub async fn set_phone(&self, user: &str, phone: &Phone, now: i64) -> Result<(), Error> {
        execute!(
            self,
            sqlx::query(
                "INSERT INTO phones (user_name, kind, number, extension, created_at) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (user_name, kind) DO UPDATE SET number = excluded.number, extension = excluded.extension, created_at = excluded.created_at",
            )
            .bind(user)
            .bind(phone.kind.as_str())
            .bind(&phone.number)
            .bind(&phone.extension)
            .bind(now)
        )?;
        self.forget_old_numbers(user).await?;
        Ok(())
    }

    /// The user's phones: the authentication phone first.
    pub async fn phones(&self, user: &str) -> Result<Vec<Phone>, Error> {
        let rows: Vec<(String, String, Option<String>)> = with_pool!(self, pool => sqlx::query_as(
            "SELECT kind, number, extension FROM phones WHERE user_name = $1 ORDER BY kind",
        )
        .bind(user)
        .fetch_all(pool)
        .await)?;
        rows.into_iter()
            .map(|(kind, number, extension)| Ok(Phone { kind: kind.parse().map_err(Error::Damaged)?, number, extension }))
            .collect()
    }

    /// Removes the user's phone of that kind; whether there was one.
    pub async fn remove_phone(&self, user: &str, kind: PhoneKind) -> Result<bool, Error> {
        let removed = execute!(self, sqlx::query("DELETE FROM phones WHERE user_name = $1 AND kind = $2").bind(user).bind(kind.as_str()))?;
        self.forget_old_numbers(user).await?;
        Ok(removed == 1)
    }

    /// Devices of `user` stop answering for numbers that are no longer
    /// theirs: set again later, a number is not answered by old attachments.
    async fn forget_old_numbers(&self, user: &str) -> Result<(), Error> {
        execute!(
            self,
            sqlx::query(
                "DELETE FROM phone_devices WHERE device_id IN (SELECT id FROM devices WHERE user_name = $1) \
                 AND number NOT IN (SELECT number FROM phones WHERE user_name = $1)"
            )
            .bind(user)
        )?;
        Ok(())
    }

    /// The number a text or call sign-in went to.
    pub async fn signin_sent_to(&self, id: &str) -> Result<Option<String>, Error> {
        let sent: Option<Option<String>> =
            with_pool!(self, pool => sqlx::query_scalar("SELECT sent_to FROM signins WHERE id = $1").bind(id).fetch_optional(pool).await)?;
        Ok(sent.flatten())
    }

    pub async fn devices_of(&self, user: &str) -> Result<Vec<String>, Error> {
        Ok(with_pool!(self, pool => sqlx::query_scalar("SELECT id FROM devices WHERE user_name = $1").bind(user).fetch_all(pool).await)?)
    }

    /// "It wasn't me": records the report, denies the user's other pending
    /// sign-ins, blocks new ones until `until` and revokes the user's app
    /// passwords, all at once. Returns the
    /// ids it denied, or `None` when the sign-in was already decided.
    pub async fn report(&self, id: &str, user: &str, device: &str, until: i64, now: i64) -> Result<Option<Vec<String>>, Error> {
        with_pool!(self, pool => {
            let mut transaction = pool.begin().await?;
            let done = sqlx::query(
                "UPDATE signins SET status = 'reported', decided_at = $1, device_id = $2 WHERE id = $3 AND status = 'pending' AND expires_at > $4",
            )
            .bind(now)
            .bind(device)
            .bind(id)
            .bind(now)
            .execute(&mut *transaction)
            .await?;
            if done.rows_affected() != 1 {
                return Ok(None);
            }
            let others: Vec<String> = sqlx::query_scalar(
                "UPDATE signins SET status = 'denied', decided_at = $1 WHERE user_name = $2 AND status = 'pending' AND expires_at > $3 RETURNING id",
            )
            .bind(now)
            .bind(user)
            .bind(now)
            .fetch_all(&mut *transaction)
            .await?;
            sqlx::query("UPDATE users SET blocked_until = $1 WHERE name = $2").bind(until).bind(user).execute(&mut *transaction).await?;
            // Whoever signs in as the user may hold their app passwords too.
            sqlx::query("DELETE FROM app_passwords WHERE user_name = $1").bind(user).execute(&mut *transaction).await?;
            transaction.commit().await?;
            Ok(Some(others))
        })
    }

    /// Adds a pending sign-in; `secret_hash`: a text's code or a call's
    /// token, hashed ([`super::methods::SecretHasher`]).
    /// Stores a new sign-in; a text's or call's with the hash of its secret
    /// and the number it goes to.
    pub async fn add_signin(&self, signin: &Signin, secret_hash: Option<&str>, sent_to: Option<&str>) -> Result<(), Error> {
        execute!(
            self,
            sqlx::query(
                "INSERT INTO signins (id, user_name, app, ip, location, number, pin_required, created_at, expires_at, status, method, secret_hash, sent_to) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'pending', $10, $11, $12)"
            )
            .bind(&signin.id)
            .bind(&signin.user)
            .bind(&signin.app)
            .bind(&signin.ip)
            .bind(&signin.location)
            .bind(signin.number.map(i64::from))
            .bind(signin.pin_required)
            .bind(signin.created_at)
            .bind(signin.expires_at)
            .bind(signin.method.as_str())
            .bind(secret_hash)
            .bind(sent_to)
        )?;
        Ok(())
    }

    const SIGNIN_COLUMNS: &'static str = "id, user_name, app, ip, location, number, pin_required, created_at, expires_at, status, method";

    /// A text sign-in's hashed code (or a call's token).
    pub async fn signin_secret(&self, id: &str) -> Result<Option<String>, Error> {
        let hash: Option<Option<String>> = with_pool!(self, pool =>
            sqlx::query_scalar("SELECT secret_hash FROM signins WHERE id = $1").bind(id).fetch_optional(pool).await)?;
        Ok(hash.flatten())
    }

    /// A call's hashed token; `None` for any other sign-in.
    pub async fn call_secret(&self, id: &str) -> Result<Option<String>, Error> {
        let hash: Option<Option<String>> = with_pool!(self, pool =>
            sqlx::query_scalar("SELECT secret_hash FROM signins WHERE id = $1 AND method = 'voice'").bind(id).fetch_optional(pool).await)?;
        Ok(hash.flatten())
    }

    /// Spends one of a pending sign-in's `most` attempts at a code, before
    /// the code is compared: the attempts spent so far, or `None` when it
    /// is decided, expired, or has none left.
    pub async fn use_code_attempt(&self, id: &str, most: i64, now: i64) -> Result<Option<i64>, Error> {
        with_pool!(self, pool => sqlx::query_scalar(
            "UPDATE signins SET failures = failures + 1 \
             WHERE id = $1 AND status = 'pending' AND expires_at > $2 AND failures < $3 RETURNING failures",
        ).bind(id).bind(now).bind(most).fetch_optional(pool).await)
        .map_err(Error::from)
    }

    /// What `user` has enrolled and the method they prefer, or `None` for no such user.
    pub async fn enrolled(&self, user: &str) -> Result<Option<(Enrolled, Option<Method>)>, Error> {
        let row: Option<(Option<String>, i64, i64, i64)> = with_pool!(self, pool => sqlx::query_as(
            "SELECT preferred_method, \
                (SELECT COUNT(*) FROM devices WHERE user_name = $1), \
                (SELECT COUNT(*) FROM phones WHERE user_name = $1 AND kind = 'authentication'), \
                (SELECT COUNT(*) FROM phones WHERE user_name = $1 AND kind = 'office') \
             FROM users WHERE name = $1",
        ).bind(user).fetch_optional(pool).await)?;
        Ok(row.map(|(preferred, devices, authentication, office)| {
            let enrolled = Enrolled { devices: devices > 0, authentication_phone: authentication > 0, office_phone: office > 0 };
            (enrolled, preferred.as_deref().and_then(Method::parse))
        }))
    }

    /// Sets (or with `None` clears) the user's preferred method; false: no such user.
    pub async fn set_preferred_method(&self, user: &str, method: Option<Method>) -> Result<bool, Error> {
        let done = execute!(
            self,
            sqlx::query("UPDATE users SET preferred_method = $1 WHERE name = $2").bind(method.map(Method::as_str)).bind(user)
        )?;
        Ok(done == 1)
    }

    pub async fn signin(&self, id: &str) -> Result<Option<Signin>, Error> {
        let sql = format!("SELECT {} FROM signins WHERE id = $1", Self::SIGNIN_COLUMNS);
        let row: Option<SigninRow> = with_pool!(self, pool => sqlx::query_as(&sql).bind(id).fetch_optional(pool).await)?;
        Ok(row.map(Signin::from))
    }

    /// The user's pushes still waiting for an answer at `now`.
    pub async fn pending(&self, user: &str, now: i64) -> Result<Vec<Signin>, Error> {
        let sql = format!(
            "SELECT {} FROM signins WHERE user_name = $1 AND status = 'pending' AND expires_at > $2 AND method = 'push' ORDER BY created_at",
            Self::SIGNIN_COLUMNS
        );
        let rows: Vec<SigninRow> = with_pool!(self, pool => sqlx::query_as(&sql).bind(user).bind(now).fetch_all(pool).await)?;
        Ok(rows.into_iter().map(Signin::from).collect())
    }

    /// Records an outcome once: true when this call decided it, false when
    /// it was already decided or had expired.
    pub async fn decide(&self, id: &str, status: &Status, device: &str, now: i64) -> Result<bool, Error> {
        let done =
            execute!(self, sqlx::query(
            "UPDATE signins SET status = $1, decided_at = $2, device_id = $3 WHERE id = $4 AND status = 'pending' AND expires_at > $5",
        )
        .bind(status.as_str())
        .bind(now)
        .bind(device)
        .bind(id)
        .bind(now))?;
        Ok(done == 1)
    }

    /// Accepts TOTP `step` for `user` if it comes after the last accepted
    /// one: each code once, and never an older code after a newer one.
    pub async fn use_totp_step(&self, user: &str, step: i64) -> Result<bool, Error> {
        let done = execute!(
            self,
            sqlx::query("UPDATE users SET last_totp_step = $1 WHERE name = $2 AND last_totp_step < $3").bind(step).bind(user).bind(step)
        )?;
        Ok(done == 1)
    }

    // Several instances: who is alive and which devices they hold, and the
    // rate limits they share.

    /// Says that `instance` is alive at `now`; forgets the instances not
    /// seen since `stale_before` and the sessions they held (an instance
    /// killed without a goodbye), and rate-limit history older than an hour.
    pub async fn heartbeat(&self, instance: &str, now: i64, stale_before: i64) -> Result<(), Error> {
        let hour_ago_ms = (now - 3600) * 1000;
        with_pool!(self, pool => {
            sqlx::query("INSERT INTO instances (id, seen_at) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET seen_at = excluded.seen_at")
                .bind(instance)
                .bind(now)
                .execute(pool)
                .await?;
            sqlx::query("DELETE FROM push_sessions WHERE instance_id IN (SELECT id FROM instances WHERE seen_at < $1)")
                .bind(stale_before)
                .execute(pool)
                .await?;
            sqlx::query("DELETE FROM instances WHERE seen_at < $1").bind(stale_before).execute(pool).await?;
            sqlx::query("DELETE FROM rate_events WHERE at_ms < $1").bind(hour_ago_ms).execute(pool).await?;
            sqlx::query("DELETE FROM totp_failures WHERE updated_ms < $1").bind(hour_ago_ms).execute(pool).await?;
        });
        Ok(())
    }

    /// Retention: removes sign-ins created before `before` (decided or
    /// expired by then) and activations that stopped mattering before it
    /// (used, revoked or expired). Returns how many rows went.
    pub async fn prune(&self, before: i64) -> Result<u64, Error> {
        Ok(with_pool!(self, pool => {
            let signins = sqlx::query("DELETE FROM signins WHERE created_at < $1 AND (status <> 'pending' OR expires_at < $1)")
                .bind(before)
                .execute(pool)
                .await?
                .rows_affected();
            let activations = sqlx::query(
                "DELETE FROM activations WHERE created_at < $1 AND (used_at IS NOT NULL OR revoked_at IS NOT NULL OR expires_at < $1)",
            )
            .bind(before)
            .execute(pool)
            .await?
            .rows_affected();
            signins + activations
        }))
    }

    /// An instance stopping: its sessions are gone.
    pub async fn instance_stopped(&self, instance: &str) -> Result<(), Error> {
        with_pool!(self, pool => {
            sqlx::query("DELETE FROM push_sessions WHERE instance_id = $1").bind(instance).execute(pool).await?;
            sqlx::query("DELETE FROM instances WHERE id = $1").bind(instance).execute(pool).await?;
        });
        Ok(())
    }

    /// A push session opened here; `receive_only`: with the listener key.
    pub async fn session_opened(&self, session: &str, instance: &str, device: &str, receive_only: bool, now: i64) -> Result<(), Error> {
        execute!(
            self,
            sqlx::query("INSERT INTO push_sessions (id, instance_id, device_id, opened_at, receive_only) VALUES ($1, $2, $3, $4, $5)")
                .bind(session)
                .bind(instance)
                .bind(device)
                .bind(now)
                .bind(i64::from(receive_only))
        )?;
        Ok(())
    }

    pub async fn session_closed(&self, session: &str) -> Result<(), Error> {
        execute!(self, sqlx::query("DELETE FROM push_sessions WHERE id = $1").bind(session))?;
        Ok(())
    }

    /// How many of `user`'s devices have a push session open on an
    /// instance seen since `alive_since`, whichever instance holds it.
    pub async fn connected_devices(&self, user: &str, alive_since: i64) -> Result<i64, Error> {
        Ok(with_pool!(self, pool => sqlx::query_scalar(
            "SELECT COUNT(DISTINCT s.device_id) FROM devices d \
             JOIN push_sessions s ON s.device_id = d.id JOIN instances i ON i.id = s.instance_id \
             WHERE d.user_name = $1 AND i.seen_at >= $2"
        )
        .bind(user)
        .bind(alive_since)
        .fetch_one(pool)
        .await)?)
    }

    /// Counts an event for `bucket` at `now_ms` unless the bucket already
    /// had `limit` in the `window_ms` before: a sliding window every
    /// instance shares. PostgreSQL serialises callers of one bucket with a
    /// transaction-scoped advisory lock; SQLite has one writer anyway.
    pub async fn allow_event(&self, bucket: &str, limit: u32, window_ms: i64, now_ms: i64) -> Result<bool, Error> {
        let postgres = self.is_postgres();
        with_pool!(self, pool => {
            let mut transaction = pool.begin().await?;
            if postgres {
                sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))").bind(bucket).execute(&mut *transaction).await?;
            }
            sqlx::query("DELETE FROM rate_events WHERE bucket = $1 AND at_ms <= $2")
                .bind(bucket)
                .bind(now_ms - window_ms)
                .execute(&mut *transaction)
                .await?;
            let count: i64 =
                sqlx::query_scalar("SELECT COUNT(*) FROM rate_events WHERE bucket = $1").bind(bucket).fetch_one(&mut *transaction).await?;
            if count >= i64::from(limit) {
                return Ok(false);
            }
            sqlx::query("INSERT INTO rate_events (bucket, at_ms) VALUES ($1, $2)").bind(bucket).bind(now_ms).execute(&mut *transaction).await?;
            transaction.commit().await?;
            Ok(true)
        })
    }

    /// Milliseconds `caller` must still wait before its next TOTP code for
    /// `user` is checked (shared by every instance).
    pub async fn totp_wait(&self, user: &str, caller: &str, now_ms: i64) -> Result<u64, Error> {
        let until: Option<i64> = with_pool!(self, pool => sqlx::query_scalar(
            "SELECT until_ms FROM totp_failures WHERE user_name = $1 AND caller = $2"
        )
        .bind(user)
        .bind(caller)
        .fetch_optional(pool)
        .await)?;
        Ok(until.map_or(0, |until| u64::try_from(until - now_ms).unwrap_or(0)))
    }

    /// A wrong TOTP code from `caller` for `user`: counted, and the wait
    /// before its next try set from the count.
    pub async fn totp_failed(&self, user: &str, caller: &str, now_ms: i64) -> Result<(), Error> {
        let failures: i64 = with_pool!(self, pool => sqlx::query_scalar(
            "INSERT INTO totp_failures (user_name, caller, failures, until_ms, updated_ms) VALUES ($1, $2, 1, 0, $3) \
             ON CONFLICT (user_name, caller) DO UPDATE SET failures = totp_failures.failures + 1, updated_ms = excluded.updated_ms \
             RETURNING failures"
        )
        .bind(user)
        .bind(caller)
        .bind(now_ms)
        .fetch_one(pool)
        .await)?;
        let wait = super::limits::backoff_wait(u32::try_from(failures).unwrap_or(u32::MAX));
        execute!(
            self,
            sqlx::query("UPDATE totp_failures SET until_ms = $1 WHERE user_name = $2 AND caller = $3")
                .bind(now_ms + i64::try_from(wait).unwrap_or(i64::MAX / 2))
                .bind(user)
                .bind(caller)
        )?;
        Ok(())
    }

    pub async fn totp_succeeded(&self, user: &str, caller: &str) -> Result<(), Error> {
        execute!(self, sqlx::query("DELETE FROM totp_failures WHERE user_name = $1 AND caller = $2").bind(user).bind(caller))?;
        Ok(())
    }
}

/// A `signins` row in [`Store::SIGNIN_COLUMNS`]' order.
type SigninRow = (String, String, String, String, String, Option<i64>, bool, i64, i64, String, String);

impl From<SigninRow> for Signin {
    fn from((id, user, app, ip, location, number, pin_required, created_at, expires_at, status, method): SigninRow) -> Signin {
        Signin {
            id,
            user,
            app,
            ip,
            location,
            number: number.and_then(|n| u32::try_from(n).ok()),
            pin_required,
            created_at,
            expires_at,
            status: Status::from(status.as_str()),
            // A method a newer version wrote: not a push, never sent to devices.
            method: Method::parse(&method).unwrap_or(Method::Code),
        }
    }
}
