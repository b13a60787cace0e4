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

/// Argon2id with modest parameters: a sandbox bank logs staff in often in tests.
fn hasher() -> BankResult<Argon2<'static>> {
    let params = Params::new(4096, 2, 1, None).map_err(|e| BankError::internal(&e))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

impl Bank {
    /// Creates a staff account (admin API, `bank-sandbox seed`).
    pub async fn create_staff(&self, username: &str, password: &str, role: Role) -> BankResult<()> {
        if username.is_empty() || username.len() > 32 || password.len() < 8 {
            return Err(BankError::invalid(
                "username 1 to 32 characters, password at least 8",
            ));
        }
        let salt_bytes = util::random_bytes::<16>()?;
        let salt = SaltString::encode_b64(&salt_bytes).map_err(|e| BankError::internal(&e))?;
        let hash = hasher()?
            .hash_password(password.as_bytes(), &salt)
            .map_err(|e| BankError::internal(&e))?
            .to_string();
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
        let Some(row) = row else {
            return Err(refused());
        };
        let stored: String = row.try_get("password_hash")?;
        let role: String = row.try_get("role")?;
        let parsed = PasswordHash::new(&stored).map_err(|e| BankError::internal(&e))?;
        hasher()?
            .verify_password(password.as_bytes(), &parsed)
            .map_err(|_| refused())?;
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
