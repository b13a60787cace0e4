//! Staff accounts, roles and tokens. Customers never log in here: they authenticate only
//! through their device.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use serde::{Deserialize, Serialize};
use sqlx::Row;

use super::Bank;
use crate::error::{BankError, BankResult};
use crate::util::{self, now_ms, sha256};

/// A staff role.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Branch teller: initialise, enrol, bind, revoke, lock/unlock; customers and accounts.
    Teller,
    /// Service operator: operator reset of tampered devices.
    Operator,
    /// A second terminal (web shop, branch PC): creates payments that need confirmation on
    /// the customer's device.
    Terminal,
    /// Administrator: staff accounts, trusted CAs, hash allow-lists.
    Admin,
}

impl Role {
    /// The role's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Teller => "teller",
            Role::Operator => "operator",
            Role::Terminal => "terminal",
            Role::Admin => "admin",
        }
    }

    /// Parses a role name.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "teller" => Some(Role::Teller),
            "operator" => Some(Role::Operator),
            "terminal" => Some(Role::Terminal),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// The staff member behind a token.
#[derive(Clone, Debug)]
pub struct StaffIdentity {
    /// User name.
    pub username: String,
    /// Role.
    pub role: Role,
}

impl StaffIdentity {
    /// Refuses unless the role is one of `allowed`.
    pub fn require(&self, allowed: &[Role]) -> BankResult<()> {
        if allowed.contains(&self.role) {
            Ok(())
        } else {
            Err(BankError::forbidden(format!(
                "role {} may not do this (needs {})",
                self.role.as_str(),
                allowed
                    .iter()
                    .map(|r| r.as_str())
                    .collect::<Vec<_>>()
                    .join(" or ")
            )))
        }
    }
}

/// Argon2id at OWASP's recommended minimum (Password Storage Cheat Sheet: m = 19 MiB,
/// t = 2, p = 1). Hashes stored with weaker parameters still verify (the PHC string carries
/// its own) and are rehashed at the next successful sign-in.
fn policy() -> BankResult<Params> {
    Params::new(19 * 1024, 2, 1, None).map_err(|e| BankError::internal(&e))
}

fn hasher() -> BankResult<Argon2<'static>> {
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, policy()?))
}

fn hash_password(password: &str) -> BankResult<String> {
    let salt_bytes = util::random_bytes::<16>()?;
    let salt = SaltString::encode_b64(&salt_bytes).map_err(|e| BankError::internal(&e))?;
    Ok(hasher()?
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| BankError::internal(&e))?
        .to_string())
}

/// A hash of a random password under the policy, verified against when the user name is
/// unknown: the refusal then costs what a wrong password costs, so timing does not tell
/// which user names exist.
fn dummy_hash() -> BankResult<&'static str> {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    if let Some(hash) = DUMMY.get() {
        return Ok(hash);
    }
    let password = hex::encode(util::random_bytes::<16>()?);
    Ok(DUMMY.get_or_init(|| hash_password(&password).unwrap_or_default()))
}

/// Whether a stored hash is below the policy (to be rehashed).
fn below_policy(parsed: &PasswordHash<'_>) -> bool {
    let Ok(params) = Params::try_from(parsed) else {
        return true;
    };
    let Ok(wanted) = policy() else {
        return false;
    };
    parsed.algorithm.as_str() != "argon2id"
        || params.m_cost() < wanted.m_cost()
        || params.t_cost() < wanted.t_cost()
        || params.p_cost() < wanted.p_cost()
}

/// Verifies `password` against the stored hash, or against [`dummy_hash`] when there is none:
/// Argon2 runs either way. Returns whether it matched and whether the stored hash needs
/// rehashing.
fn verify_password(stored: Option<&str>, password: &str) -> BankResult<(bool, bool)> {
    let text = match stored {
        Some(text) => text,
        None => dummy_hash()?,
    };
    let parsed = PasswordHash::new(text).map_err(|e| BankError::internal(&e))?;
    let matched = hasher()?
        .verify_password(password.as_bytes(), &parsed)
        .is_ok();
    Ok((matched && stored.is_some(), below_policy(&parsed)))
}

impl Bank {
    /// Creates a staff account (admin API, `bank-sandbox seed`).
    pub async fn create_staff(&self, username: &str, password: &str, role: Role) -> BankResult<()> {
        if username.is_empty() || username.len() > 32 || password.len() < 8 {
            return Err(BankError::invalid(
                "username 1 to 32 characters, password at least 8",
            ));
        }
        let hash = hash_password(password)?;
        let result = sqlx::query(&self.store.q(
            "INSERT INTO staff (username, password_hash, role, created_at) VALUES (?, ?, ?, ?)",
        ))
        .bind(username)
        .bind(hash)
        .bind(role.as_str())
        .bind(now_ms())
        .execute(self.store.writer())
        .await;
        match result {
            Ok(_) => Ok(()),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Err(BankError::conflict(
                "staff_exists",
                format!("staff {username} exists"),
            )),
            Err(e) => Err(e.into()),
        }
    }

    /// Staff login: a bearer token (64 hex digits) for `staff_token_ttl_ms`.
    pub async fn staff_login(
        &self,
        username: &str,
        password: &str,
    ) -> BankResult<serde_json::Value> {
        let row = sqlx::query(
            &self
                .store
                .q("SELECT password_hash, role FROM staff WHERE username = ?"),
        )
        .bind(username)
        .fetch_optional(self.store.reader())
        .await?;
        let refused = || BankError::unauthorized("unknown user name or wrong password");
        let stored: Option<(String, String)> = match row {
            Some(row) => Some((row.try_get("password_hash")?, row.try_get("role")?)),
            None => None,
        };
        // Argon2 is CPU-bound for tens of milliseconds: off the async workers.
        let candidate = zeroize::Zeroizing::new(password.to_owned());
        let hash = stored.as_ref().map(|(hash, _)| hash.clone());
        let (matched, rehash) =
            tokio::task::spawn_blocking(move || verify_password(hash.as_deref(), &candidate))
                .await
                .map_err(|e| BankError::internal(&e))??;
        let Some((_, role)) = stored.filter(|_| matched) else {
            return Err(refused());
        };
        if rehash {
            let fresh = hash_password(password)?;
            sqlx::query(
                &self
                    .store
                    .q("UPDATE staff SET password_hash = ? WHERE username = ?"),
            )
            .bind(fresh)
            .bind(username)
            .execute(self.store.writer())
            .await?;
            tracing::info!(
                username,
                "staff password rehashed to the current Argon2id policy"
            );
        }
        let token = util::random_bytes::<32>()?;
        let expires_at = now_ms() + self.config.staff_token_ttl_ms;
        sqlx::query(&self.store.q(
            "INSERT INTO staff_tokens (token_hash, username, role, expires_at) VALUES (?, ?, ?, ?)",
        ))
        .bind(sha256(&token).to_vec())
        .bind(username)
        .bind(role.clone())
        .bind(expires_at)
        .execute(self.store.writer())
        .await?;
        Ok(serde_json::json!({
            "token": hex::encode(token),
            "username": username,
            "role": role,
            "expires_at": expires_at,
        }))
    }

    /// Ends a staff token (`POST /v1/staff/logout`): it is refused from now on.
    pub async fn staff_logout(&self, token_hex: &str) -> BankResult<()> {
        let token = hex::decode(token_hex.trim())
            .map_err(|_| BankError::unauthorized("staff token: not hexadecimal"))?;
        let done = sqlx::query(
            &self
                .store
                .q("DELETE FROM staff_tokens WHERE token_hash = ?"),
        )
        .bind(sha256(&token).to_vec())
        .execute(self.store.writer())
        .await?;
        if done.rows_affected() == 0 {
            return Err(BankError::unauthorized("unknown staff token"));
        }
        Ok(())
    }

    /// The staff member behind a bearer token.
    pub async fn staff_identity(&self, token_hex: &str) -> BankResult<StaffIdentity> {
        let token = hex::decode(token_hex.trim())
            .map_err(|_| BankError::unauthorized("staff token: not hexadecimal"))?;
        let row = sqlx::query(
            &self
                .store
                .q("SELECT username, role, expires_at FROM staff_tokens WHERE token_hash = ?"),
        )
        .bind(sha256(&token).to_vec())
        .fetch_optional(self.store.reader())
        .await?
        .ok_or_else(|| BankError::unauthorized("unknown staff token"))?;
        if row.try_get::<i64, _>("expires_at")? < now_ms() {
            return Err(BankError::unauthorized("the staff token expired"));
        }
        let role: String = row.try_get("role")?;
        Ok(StaffIdentity {
            username: row.try_get("username")?,
            role: Role::parse(&role).ok_or_else(|| BankError::internal(&"stored role"))?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_users_cost_a_full_verification_at_the_policy() {
        let dummy = PasswordHash::new(dummy_hash().unwrap_or_default())
            .unwrap_or_else(|e| panic!("dummy hash: {e}"));
        assert!(
            !below_policy(&dummy),
            "the dummy hash is cheaper than a real one"
        );
        let real = hash_password("right-password").unwrap_or_default();
        assert!(matches!(
            verify_password(None, "right-password"),
            Ok((false, false))
        ));
        assert!(matches!(
            verify_password(Some(&real), "wrong-password"),
            Ok((false, false))
        ));
        assert!(matches!(
            verify_password(Some(&real), "right-password"),
            Ok((true, false))
        ));
    }

    #[test]
    fn weaker_stored_hashes_are_marked_for_rehashing() {
        let weak = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(4096, 2, 1, None).unwrap_or_else(|e| panic!("{e}")),
        )
        .hash_password(
            b"right-password",
            &SaltString::encode_b64(&[7; 16]).unwrap_or_else(|e| panic!("{e}")),
        )
        .map(|h| h.to_string())
        .unwrap_or_default();
        assert!(matches!(
            verify_password(Some(&weak), "right-password"),
            Ok((true, true))
        ));
    }
}
