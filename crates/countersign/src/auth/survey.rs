//! Surveying the stored password hashes: which formats are present decides what every
//! failed login costs ([`crate::hash_costs`]).

use std::sync::Arc;
use std::time::Duration;

use super::Auth;
use crate::hash_costs::{ClassList, Survey};
use crate::store::StoreError;

impl Auth {
    /// Survey the user store's password hashes ([`crate::password::HashingPool::survey`]):
    /// which formats and parameters are present decides what every failed login costs,
    /// so that it does not depend on whether the name exists or on its hash's format
    /// ([module docs](crate::hash_costs)). Call it once after building the service when
    /// the store may hold imported hashes, and again after an import; the server does so
    /// before it listens, and then every [`SURVEY_EVERY`](crate::hash_costs::SURVEY_EVERY).
    ///
    /// # Errors
    /// When the user store fails.
    pub async fn survey_password_hashes(&self) -> Result<Survey, StoreError> {
        self.pool().survey(self.users().as_ref()).await
    }

    /// Survey the stored hashes every `every`, forever (spawn it; abort the task to stop).
    /// A survey that fails is logged and tried again at the next turn.
    pub async fn keep_surveying_password_hashes(self: Arc<Self>, every: Duration) {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The first tick is now: the caller has just surveyed.
        ticks.tick().await;
        loop {
            ticks.tick().await;
            match self.survey_password_hashes().await {
                Ok(survey) => tracing::debug!(
                    budget = %ClassList(&survey.budget),
                    "password hash classes surveyed"
                ),
                Err(e) => tracing::warn!(
                    error = %e,
                    "cannot survey the stored password hashes; trying again later"
                ),
            }
        }
    }
}
