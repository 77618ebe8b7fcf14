//! The server's storage: users, one-time activations, devices, sign-ins and
//! used TOTP steps, in SQLite through sqlx (portable SQL, so PostgreSQL can
//! follow). Migrations live in `src/server/migrations/` and run at start-up.

use std::path::Path;
use std::str::FromStr;

use sha2::{Digest, Sha256};
use sqlx::Row;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};

use zeroize::Zeroizing;

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
    #[error("migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored data is damaged: {0}")]
    Damaged(String),
    #[error("the operating system's random number generator failed")]
    Random,
}

/// A sign-in row.
#[derive(Debug, Clone, PartialEq, Eq)]
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
}

impl Signin {
    /// The status as seen at `now`: a pending sign-in past its expiry has expired.
    pub fn status_at(&self, now: i64) -> Status {
        if self.status == Status::Pending && now >= self.expires_at { Status::Expired } else { self.status.clone() }
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

/// An activation as the admin sees it (never its code).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ActivationInfo {
    pub id: String,
    pub created_at: i64,
    pub expires_at: i64,
    /// `outstanding`, `used`, `revoked`, `expired` or `too_many_attempts`.
    pub state: String,
}

#[derive(Clone)]
pub struct Store {
    pub(super) pool: SqlitePool,
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

impl Store {
    /// Opens (creating) the SQLite file and runs the migrations.
    pub async fn open(path: &Path) -> Result<Store, Error> {
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
        sqlx::migrate!("src/server/migrations").run(&pool).await?;
        let store = Store { pool, secrets: None };
        store.hash_clear_tokens().await?;
        Ok(store)
    }

    /// Seals users' TOTP secrets with `key` from now on, and seals the ones
    /// still in clear.
    pub async fn with_totp_key(mut self, key: &[u8; 32]) -> Result<Store, Error> {
        let sealer = SecretBox::new(key);
        let rows = sqlx::query("SELECT name, totp_secret FROM users").fetch_all(&self.pool).await?;
        for row in rows {
            let (name, stored): (String, String) = (row.get(0), row.get(1));
            if secrets::is_sealed(&stored) {
                sealer.open(&name, &stored)?;
            } else {
                sqlx::query("UPDATE users SET totp_secret = ? WHERE name = ? AND totp_secret = ?")
                    .bind(sealer.seal(&name, &stored)?)
                    .bind(&name)
                    .bind(&stored)
                    .execute(&self.pool)
                    .await?;
            }
        }
        self.secrets = Some(std::sync::Arc::new(sealer));
        Ok(self)
    }

    /// Fails when secrets are sealed but no key was given.
    pub async fn check_secrets_readable(&self) -> Result<(), Error> {
        if self.secrets.is_none() {
            let sealed: i64 = sqlx::query("SELECT COUNT(*) FROM users WHERE totp_secret LIKE 'xc1:%'").fetch_one(&self.pool).await?.get(0);
            if sealed > 0 {
                return Err(Error::Damaged(format!(
                    "{sealed} users' TOTP secrets are sealed: set totp_key_file to the key they were sealed with"
                )));
            }
        }
        Ok(())
    }

    async fn setting(&self, name: &str) -> Result<Option<String>, Error> {
        Ok(sqlx::query("SELECT value FROM server_settings WHERE name = ?")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?
            .map(|row| row.get(0)))
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
        sqlx::query("DELETE FROM server_settings WHERE name = 'server_key'").execute(&self.pool).await?;
        Ok(key)
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
        sqlx::query("INSERT INTO server_settings (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value")
            .bind(format!("{name}_sha256"))
            .bind(hash)
            .execute(&self.pool)
            .await?;
        sqlx::query("DELETE FROM server_settings WHERE name = ?").bind(name).execute(&self.pool).await?;
        Ok(())
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
        let done = sqlx::query(
            "INSERT INTO users (name, organization, totp_secret, created_at) VALUES (?, ?, ?, ?) ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(organization)
        .bind(secret)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn user_exists(&self, name: &str) -> Result<bool, Error> {
        Ok(sqlx::query("SELECT 1 FROM users WHERE name = ?").bind(name).fetch_optional(&self.pool).await?.is_some())
    }

    /// The user's organisation, TOTP secret (Base32) and blocked-until time.
    /// A user's organisation, TOTP secret (base32, opened if sealed) and
    /// the end of any block.
    pub async fn user(&self, name: &str) -> Result<Option<(String, String, i64)>, Error> {
        let Some(row) = sqlx::query("SELECT organization, totp_secret, blocked_until FROM users WHERE name = ?")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?
        else {
            return Ok(None);
        };
        let stored: String = row.get(1);
        let secret = match &self.secrets {
            Some(sealer) => sealer.open(name, &stored)?,
            None if secrets::is_sealed(&stored) => return Err(Error::Damaged("TOTP secrets are sealed: set totp_key_file".into())),
            None => stored,
        };
        Ok(Some((row.get(0), secret, row.get(2))))
    }

    /// Creates a one-time activation: its id and its 12-digit code. Every
    /// older outstanding activation of the user is revoked in the same
    /// transaction: only the newest code activates.
    pub async fn create_activation(&self, user: &str, now: i64) -> Result<(String, String), Error> {
        let id = random_hex::<12>()?;
        let mut bytes = [0u8; 8];
        getrandom::fill(&mut bytes).map_err(|_| Error::Random)?;
        let code = format!("{:012}", u64::from_be_bytes(bytes) % 1_000_000_000_000);
        let mut transaction = self.pool.begin().await?;
        sqlx::query("UPDATE activations SET revoked_at = ? WHERE user_name = ? AND used_at IS NULL AND revoked_at IS NULL")
            .bind(now)
            .bind(user)
            .execute(&mut *transaction)
            .await?;
        sqlx::query("INSERT INTO activations (id, user_name, code_hash, expires_at, created_at) VALUES (?, ?, ?, ?, ?)")
            .bind(&id)
            .bind(user)
            .bind(hash(&code))
            .bind(now + ACTIVATION_SECONDS)
            .bind(now)
            .execute(&mut *transaction)
            .await?;
        transaction.commit().await?;
        Ok((id, code))
    }

    /// Checks a code against activation `id`, counting wrong tries; a right
    /// code marks the activation used (once: a concurrent second use loses).
    pub async fn use_activation(&self, id: &str, code: &str, now: i64) -> Result<Activation, Error> {
        let Some(row) = sqlx::query("SELECT user_name, code_hash, expires_at, used_at, failures, revoked_at FROM activations WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
        else {
            return Ok(Activation::Refused(Refused::NotFound));
        };
        let (user, code_hash, expires_at, used_at, failures, revoked_at): (String, String, i64, Option<i64>, i64, Option<i64>) =
            (row.get(0), row.get(1), row.get(2), row.get(3), row.get(4), row.get(5));
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
            let counted: Option<i64> = sqlx::query(
                "UPDATE activations SET failures = failures + 1 WHERE id = ? AND failures < ? AND used_at IS NULL RETURNING failures",
            )
            .bind(id)
            .bind(MAX_FAILURES)
            .fetch_optional(&self.pool)
            .await?
            .map(|row| row.get(0));
            let left = counted.map_or(0, |failures| MAX_FAILURES - failures);
            return Ok(Activation::Refused(if left <= 0 { Refused::TooManyAttempts } else { Refused::WrongCode { left } }));
        }
        // Used once, and with it every other outstanding code of the user is
        // revoked: an older code cannot add a second device afterwards.
        let mut transaction = self.pool.begin().await?;
        let done = sqlx::query("UPDATE activations SET used_at = ? WHERE id = ? AND used_at IS NULL AND revoked_at IS NULL")
            .bind(now)
            .bind(id)
            .execute(&mut *transaction)
            .await?;
        if done.rows_affected() != 1 {
            return Ok(Activation::Refused(Refused::Used));
        }
        sqlx::query("UPDATE activations SET revoked_at = ? WHERE user_name = ? AND id <> ? AND used_at IS NULL AND revoked_at IS NULL")
            .bind(now)
            .bind(&user)
            .bind(id)
            .execute(&mut *transaction)
            .await?;
        transaction.commit().await?;
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
        sqlx::query("INSERT INTO devices (id, user_name, public_key, listener_key, name, created_at) VALUES (?, ?, ?, ?, ?, ?)")
            .bind(&id)
            .bind(user)
            .bind(key.to_base64())
            .bind(listener.map(PublicKey::to_base64))
            .bind(name)
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(id)
    }

    /// A device: its user, its key, and its listener key if it has one.
    pub async fn device(&self, id: &str) -> Result<Option<Device>, Error> {
        let Some(row) =
            sqlx::query("SELECT user_name, public_key, listener_key FROM devices WHERE id = ?").bind(id).fetch_optional(&self.pool).await?
        else {
            return Ok(None);
        };
        let damaged = |what: &str| Error::Damaged(format!("device {id}'s {what}"));
        let key: String = row.get(1);
        let listener: Option<String> = row.get(2);
        Ok(Some(Device {
            user: row.get(0),
            key: PublicKey::from_base64(&key).map_err(|_| damaged("key"))?,
            listener: listener.map(|key| PublicKey::from_base64(&key).map_err(|_| damaged("listener key"))).transpose()?,
        }))
    }

    /// Replaces a device's listener key (the device key vouched for it).
    pub async fn set_listener_key(&self, id: &str, listener: &PublicKey) -> Result<bool, Error> {
        let done =
            sqlx::query("UPDATE devices SET listener_key = ? WHERE id = ?").bind(listener.to_base64()).bind(id).execute(&self.pool).await?;
        Ok(done.rows_affected() == 1)
    }

    /// The user's devices, oldest first.
    pub async fn devices(&self, user: &str) -> Result<Vec<DeviceInfo>, Error> {
        let rows =
            sqlx::query("SELECT id, name, created_at, listener_key IS NOT NULL FROM devices WHERE user_name = ? ORDER BY created_at, id")
                .bind(user)
                .fetch_all(&self.pool)
                .await?;
        Ok(rows
            .into_iter()
            .map(|row| DeviceInfo { id: row.get(0), name: row.get(1), created_at: row.get(2), listener: row.get(3) })
            .collect())
    }

    /// Removes a device: it can no longer connect, answer or be pushed to.
    /// Returns whether it existed.
    pub async fn revoke_device(&self, id: &str) -> Result<bool, Error> {
        Ok(sqlx::query("DELETE FROM devices WHERE id = ?").bind(id).execute(&self.pool).await?.rows_affected() == 1)
    }

    /// The user's activations, newest first, with their state at `now`.
    pub async fn activations(&self, user: &str, now: i64) -> Result<Vec<ActivationInfo>, Error> {
        let rows = sqlx::query("SELECT id, created_at, expires_at, used_at, revoked_at, failures FROM activations WHERE user_name = ? ORDER BY created_at DESC, id").bind(user).fetch_all(&self.pool).await?;
        Ok(rows
            .into_iter()
            .map(|row| {
                let (used, revoked, failures, expires_at): (Option<i64>, Option<i64>, i64, i64) =
                    (row.get(3), row.get(4), row.get(5), row.get(2));
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
                ActivationInfo { id: row.get(0), created_at: row.get(1), expires_at, state: state.into() }
            })
            .collect())
    }

    /// Revokes an unused activation; whether there was one to revoke.
    pub async fn revoke_activation(&self, id: &str, now: i64) -> Result<bool, Error> {
        Ok(sqlx::query("UPDATE activations SET revoked_at = ? WHERE id = ? AND used_at IS NULL AND revoked_at IS NULL")
            .bind(now)
            .bind(id)
            .execute(&self.pool)
            .await?
            .rows_affected()
            == 1)
    }

    pub async fn devices_of(&self, user: &str) -> Result<Vec<String>, Error> {
        Ok(sqlx::query("SELECT id FROM devices WHERE user_name = ?")
            .bind(user)
            .fetch_all(&self.pool)
            .await?
            .into_iter()
            .map(|row| row.get(0))
            .collect())
    }

    /// "It wasn't me": records the report, denies the user's other pending
    /// sign-ins and blocks new ones until `until`, all at once. Returns the
    /// ids it denied, or `None` when the sign-in was already decided.
    pub async fn report(&self, id: &str, user: &str, device: &str, until: i64, now: i64) -> Result<Option<Vec<String>>, Error> {
        let mut transaction = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE signins SET status = 'reported', decided_at = ?, device_id = ? WHERE id = ? AND status = 'pending' AND expires_at > ?",
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
        let others: Vec<String> = sqlx::query("UPDATE signins SET status = 'denied', decided_at = ? WHERE user_name = ? AND status = 'pending' AND expires_at > ? RETURNING id")
            .bind(now)
            .bind(user)
            .bind(now)
            .fetch_all(&mut *transaction)
            .await?
            .into_iter()
            .map(|row| row.get(0))
            .collect();
        sqlx::query("UPDATE users SET blocked_until = ? WHERE name = ?").bind(until).bind(user).execute(&mut *transaction).await?;
        transaction.commit().await?;
        Ok(Some(others))
    }

    pub async fn add_signin(&self, signin: &Signin) -> Result<(), Error> {
        sqlx::query("INSERT INTO signins (id, user_name, app, ip, location, number, pin_required, created_at, expires_at, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending')")
            .bind(&signin.id)
            .bind(&signin.user)
            .bind(&signin.app)
            .bind(&signin.ip)
            .bind(&signin.location)
            .bind(signin.number.map(i64::from))
            .bind(signin.pin_required)
            .bind(signin.created_at)
            .bind(signin.expires_at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    fn signin_from(row: &sqlx::sqlite::SqliteRow) -> Signin {
        let number: Option<i64> = row.get(5);
        Signin {
            id: row.get(0),
            user: row.get(1),
            app: row.get(2),
            ip: row.get(3),
            location: row.get(4),
            number: number.and_then(|n| u32::try_from(n).ok()),
            pin_required: row.get(6),
            created_at: row.get(7),
            expires_at: row.get(8),
            status: Status::from(row.get::<&str, _>(9)),
        }
    }

    const SIGNIN_COLUMNS: &'static str = "id, user_name, app, ip, location, number, pin_required, created_at, expires_at, status";

    pub async fn signin(&self, id: &str) -> Result<Option<Signin>, Error> {
        let sql = format!("SELECT {} FROM signins WHERE id = ?", Self::SIGNIN_COLUMNS);
        Ok(sqlx::query(&sql).bind(id).fetch_optional(&self.pool).await?.as_ref().map(Self::signin_from))
    }

    /// The user's sign-ins still waiting for an answer at `now`.
    pub async fn pending(&self, user: &str, now: i64) -> Result<Vec<Signin>, Error> {
        let sql = format!(
            "SELECT {} FROM signins WHERE user_name = ? AND status = 'pending' AND expires_at > ? ORDER BY created_at",
            Self::SIGNIN_COLUMNS
        );
        Ok(sqlx::query(&sql).bind(user).bind(now).fetch_all(&self.pool).await?.iter().map(Self::signin_from).collect())
    }

    /// Records an outcome once: true when this call decided it, false when
    /// it was already decided or had expired.
    pub async fn decide(&self, id: &str, status: &Status, device: &str, now: i64) -> Result<bool, Error> {
        let done = sqlx::query(
            "UPDATE signins SET status = ?, decided_at = ?, device_id = ? WHERE id = ? AND status = 'pending' AND expires_at > ?",
        )
        .bind(status.as_str())
        .bind(now)
        .bind(device)
        .bind(id)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Accepts TOTP `step` for `user` if it comes after the last accepted
    /// one: each code once, and never an older code after a newer one.
    pub async fn use_totp_step(&self, user: &str, step: i64) -> Result<bool, Error> {
        let done = sqlx::query("UPDATE users SET last_totp_step = ? WHERE name = ? AND last_totp_step < ?")
            .bind(step)
            .bind(user)
            .bind(step)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }
}
