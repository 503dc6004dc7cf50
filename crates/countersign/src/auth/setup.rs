//! The first administrator, made through the one-time setup link.

use super::{AccountError, Auth};
use crate::password::Password;
use crate::setup::{SetupError, SetupSecret, SetupToken};
use crate::store::StoreError;
use crate::user::{Role, User, Username};

impl Auth {
    /// Issue the setup link's token ([`crate::setup`]) when no user exists: the secret to
    /// print, once per process. `None` when a user exists or a token was issued before.
    ///
    /// # Errors
    /// [`SetupError::Account`] when the user store fails, [`SetupError::Random`] when the
    /// OS random source does.
    pub async fn open_setup(&self) -> Result<Option<SetupSecret>, SetupError> {
        if self.setup.get().is_some() || !self.no_users().await? {
            return Ok(None);
        }
        let (token, secret) = SetupToken::issue(self.now()).map_err(SetupError::Random)?;
        Ok(self.setup.set(token).is_ok().then_some(secret))
    }

    /// Whether `presented` opens the setup page: it is the setup token, unexpired and
    /// unused, and no user exists yet (seeing one closes the token for good).
    ///
    /// # Errors
    /// When the user store fails.
    pub async fn setup_allowed(&self, presented: &str) -> Result<bool, StoreError> {
        let Some(token) = self.setup.get() else {
            return Ok(false);
        };
        if !token.check(presented, self.now()) {
            return Ok(false);
        }
        if self.no_users().await? {
            Ok(true)
        } else {
            token.close();
            Ok(false)
        }
    }

    /// Create the first administrator (role `admin`) with the setup token, and close it.
    ///
    /// The name and password are checked before the token is taken, so a refused
    /// password leaves the link usable; the token is then taken atomically, so of two
    /// concurrent submissions exactly one makes an account and the other gets
    /// [`SetupError::Closed`].
    ///
    /// # Errors
    /// [`SetupError::Closed`] for a wrong, expired or used token or when a user exists
    /// (deliberately one answer); [`SetupError::Account`] as for [`Auth::create_user`]
    /// (the token is given back).
    pub async fn create_first_admin(
        &self,
        presented: &str,
        username: &str,
        password: Password,
    ) -> Result<User, SetupError> {
        let now = self.now();
        let Some(token) = self.setup.get().filter(|t| t.check(presented, now)) else {
            return Err(SetupError::Closed);
        };
        Username::parse(username).map_err(AccountError::from)?;
        password.check_policy().map_err(AccountError::from)?;
        let Some(claim) = token.claim(presented, now) else {
            return Err(SetupError::Closed);
        };
        if !self.no_users().await? {
            token.close();
            return Err(SetupError::Closed);
        }
        match self.create_user(username, password, Role::admin()).await {
            Ok(user) => {
                claim.complete();
                Ok(user)
            }
            // The name was free a moment ago: someone else made that user meanwhile.
            Err(AccountError::Taken) => {
                token.close();
                Err(SetupError::Closed)
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn no_users(&self) -> Result<bool, StoreError> {
        Ok(self.users.list_users().await?.is_empty())
    }
}
